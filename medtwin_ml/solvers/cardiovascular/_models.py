"""Boundary models of the cardiovascular twin: patient, devices, scenario.

Units: pressure mmHg, volume mL, flow mL/s, time s. Defaults are the parameters of
the closed-loop model of Smith et al. (Med Eng Phys 26:131, 2004), Table 1, for a
resting adult at 60 beats per minute.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from medtwin_ml.config import BoundaryModel

__all__ = ["CardiovascularDevice", "CardiovascularParameters", "CardiovascularScenario"]

_POS = {"gt": 0.0}


class CardiovascularParameters(BoundaryModel):
    """One virtual patient's circulation.

    Chamber pressures follow ``P = e(t) Ees (V - Vd) + (1 - e(t)) P0 (exp(lambda V)
    - 1)`` for the ventricles and ``P = E V`` for the vessels (unstressed volumes
    are zero, as in Smith et al. 2004); valves are diodes with resistance and
    inertance.
    """

    heart_rate_bpm: float = Field(60.0, ge=20, le=220, description="Intrinsic rate.")
    intrinsic_av_delay_ms: float = Field(160.0, ge=0, le=400)

    lv_ees_mmhg_per_ml: float = Field(2.8798, **_POS)
    lv_p0_mmhg: float = Field(0.1203, **_POS)
    lv_lambda_per_ml: float = Field(0.033, **_POS)
    rv_ees_mmhg_per_ml: float = Field(0.585, **_POS)
    rv_p0_mmhg: float = Field(0.2157, **_POS)
    rv_lambda_per_ml: float = Field(0.023, **_POS)
    activation_b_per_s2: float = Field(
        80.0, **_POS, description="Width of e(t) = exp(-B (t - C)^2), 1/s^2."
    )
    activation_c_s: float = Field(0.27, **_POS, description="Peak time of e(t), s.")

    pericardium_p0_mmhg: float = Field(0.5003, ge=0)
    pericardium_lambda_per_ml: float = Field(0.03, ge=0)
    pericardium_v0_ml: float = Field(200.0, ge=0)

    aorta_elastance_mmhg_per_ml: float = Field(0.6913, **_POS)
    vena_cava_elastance_mmhg_per_ml: float = Field(0.0059, **_POS)
    pulmonary_artery_elastance_mmhg_per_ml: float = Field(0.369, **_POS)
    pulmonary_vein_elastance_mmhg_per_ml: float = Field(0.0073, **_POS)
    systemic_resistance_mmhg_s_per_ml: float = Field(1.0889, **_POS)
    pulmonary_resistance_mmhg_s_per_ml: float = Field(0.1552, **_POS)

    mitral_resistance_mmhg_s_per_ml: float = Field(0.0158, **_POS)
    aortic_resistance_mmhg_s_per_ml: float = Field(0.018, **_POS)
    tricuspid_resistance_mmhg_s_per_ml: float = Field(0.0237, **_POS)
    pulmonary_valve_resistance_mmhg_s_per_ml: float = Field(0.0055, **_POS)
    mitral_inertance_mmhg_s2_per_ml: float = Field(7.6968e-5, **_POS)
    aortic_inertance_mmhg_s2_per_ml: float = Field(1.2189e-4, **_POS)
    tricuspid_inertance_mmhg_s2_per_ml: float = Field(8.0093e-5, **_POS)
    pulmonary_valve_inertance_mmhg_s2_per_ml: float = Field(1.4868e-4, **_POS)

    stressed_blood_volume_ml: float = Field(1500.0, gt=100, le=6000)
    atrial_kick_left_mmhg: float = Field(
        4.0, ge=0, le=30, description="Peak pressure of left atrial systole, mmHg."
    )
    atrial_kick_right_mmhg: float = Field(
        3.0, ge=0, le=30, description="Peak pressure of right atrial systole, mmHg."
    )

    baroreflex: bool = Field(False, description="Close the arterial baroreflex loop.")
    baroreflex_set_point_mmhg: float = Field(95.0, gt=0, le=200)
    baroreflex_slope_mmhg: float = Field(11.758, **_POS)
    baroreflex_heart_rate_gain: float = Field(
        0.5, ge=0, le=2, description="Largest fractional change of heart rate."
    )
    baroreflex_resistance_gain: float = Field(
        0.5, ge=0, le=2, description="Largest fractional change of R_sys."
    )


class CardiovascularDevice(BoundaryModel):
    """Pacemaker and LVAD settings.

    ``pacing_rate_bpm`` ``None`` leaves the intrinsic rhythm (and, with the
    baroreflex on, its reflex control of rate); a number paces the ventricles at
    that fixed rate with ``av_delay_ms`` between the atrial and ventricular events.
    ``lvad_speed_krpm`` 0 means no pump is implanted.
    """

    pacing_rate_bpm: float | None = Field(None, ge=30, le=200)
    av_delay_ms: float = Field(150.0, ge=0, le=400)
    lvad_speed_krpm: float = Field(0.0, ge=0, le=15)
    seed: int = Field(0, description="Unused: the circulation is deterministic.")


class CardiovascularScenario(BoundaryModel):
    """How long to simulate and how finely to report.

    Per-beat outcomes in the summary are averaged over the last ``summary_beats``
    complete beats, so a long enough ``duration_s`` lets the loop settle first.
    """

    duration_s: float = Field(10.0, gt=0, le=3600)
    output_interval_s: float = Field(0.005, gt=0, le=1)
    step_s: float = Field(
        0.001, gt=0, le=0.002, description="Fixed integration step, s."
    )
    summary_beats: int = Field(2, ge=1, le=100)

    @model_validator(mode="after")
    def _grid(self) -> CardiovascularScenario:
        ratio = self.output_interval_s / self.step_s
        if abs(ratio - round(ratio)) > 1e-9 * ratio:
            raise ValueError(
                f"output_interval_s = {self.output_interval_s} is not a whole "
                f"multiple of step_s = {self.step_s}"
            )
        if self.duration_s < self.output_interval_s:
            raise ValueError(
                f"duration_s = {self.duration_s} is shorter than output_interval_s "
                f"= {self.output_interval_s}"
            )
        return self
