"""Boundary models of the respiratory twin: lung mechanics, ventilator, scenario.

Units: pressure cmH2O, volume mL, flow L/s, resistance cmH2O s/L, compliance
mL/cmH2O, time s.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from medtwin_ml.config import BoundaryModel

__all__ = ["RespiratoryDevice", "RespiratoryParameters", "RespiratoryScenario"]


class RespiratoryParameters(BoundaryModel):
    """Passive lung mechanics, one or two compartments.

    The airway (endotracheal tube and central airways, ``airway_resistance``)
    branches into compartment 1 (``resistance_1``, ``compliance_1``) and, with two
    compartments, compartment 2 in parallel. With one compartment the total
    resistance is ``airway_resistance + resistance_1`` and the second compartment's
    fields are unused.
    """

    n_compartments: Literal[1, 2] = 1
    airway_resistance_cmh2o_s_per_l: float = Field(5.0, ge=0, le=100)
    resistance_1_cmh2o_s_per_l: float = Field(3.0, ge=0, le=200)
    compliance_1_ml_per_cmh2o: float = Field(50.0, gt=0, le=300)
    resistance_2_cmh2o_s_per_l: float = Field(3.0, ge=0, le=200)
    compliance_2_ml_per_cmh2o: float = Field(25.0, gt=0, le=300)

    @model_validator(mode="after")
    def _resistances(self) -> RespiratoryParameters:
        r0 = self.airway_resistance_cmh2o_s_per_l
        r1, r2 = self.resistance_1_cmh2o_s_per_l, self.resistance_2_cmh2o_s_per_l
        if self.n_compartments == 1 and r0 + r1 <= 0:
            raise ValueError(
                "airway_resistance_cmh2o_s_per_l + resistance_1_cmh2o_s_per_l = 0; "
                "expected a positive total resistance"
            )
        if self.n_compartments == 2 and not (r1 > 0 and r2 > 0):
            raise ValueError(
                f"resistance_1_cmh2o_s_per_l = {r1}, resistance_2_cmh2o_s_per_l = "
                f"{r2}; expected both positive with two compartments"
            )
        return self

    @property
    def total_compliance_ml_per_cmh2o(self) -> float:
        c = self.compliance_1_ml_per_cmh2o
        return c + (self.compliance_2_ml_per_cmh2o if self.n_compartments == 2 else 0)


class RespiratoryDevice(BoundaryModel):
    """Ventilator settings.

    ``tidal_volume_ml`` and ``inspiratory_pause_s`` act in volume control,
    ``inspiratory_pressure_cmh2o`` (above PEEP) in pressure control; the others in
    both. ``ie_ratio`` is inspiratory over expiratory time (0.5 for 1:2).
    """

    mode: Literal["volume_control", "pressure_control"] = "volume_control"
    peep_cmh2o: float = Field(5.0, ge=0, le=30)
    rate_per_min: float = Field(15.0, ge=4, le=60)
    ie_ratio: float = Field(0.5, gt=0.1, le=4.0)
    tidal_volume_ml: float = Field(500.0, gt=0, le=2000)
    inspiratory_pressure_cmh2o: float = Field(15.0, gt=0, le=60)
    inspiratory_pause_s: float = Field(0.0, ge=0, le=2)
    seed: int = Field(0, description="Unused: the ventilator is deterministic.")

    @model_validator(mode="after")
    def _pause_fits(self) -> RespiratoryDevice:
        ti = 60.0 / self.rate_per_min * self.ie_ratio / (1.0 + self.ie_ratio)
        if self.mode == "volume_control" and self.inspiratory_pause_s >= ti:
            raise ValueError(
                f"inspiratory_pause_s = {self.inspiratory_pause_s} s; expected less "
                f"than the inspiratory time {ti:.3g} s set by rate and I:E"
            )
        return self


class RespiratoryScenario(BoundaryModel):
    """Duration, reporting grid and the patient's own breathing effort.

    Spontaneous effort is a muscle pressure ``P_eff sin^2(pi t / T_eff)`` during
    the first ``effort_duration_s`` of each of the patient's own breaths, at
    ``effort_rate_per_min``; it adds to the ventilator's drive (the ventilator does
    not trigger on it). ``effort_pressure_cmh2o`` 0 means a passive patient.
    """

    duration_s: float = Field(30.0, gt=0, le=3600)
    step_s: float = Field(0.005, gt=0, le=0.02, description="Integration step, s.")
    output_interval_s: float = Field(0.02, gt=0, le=1)
    effort_pressure_cmh2o: float = Field(0.0, ge=0, le=30)
    effort_rate_per_min: float = Field(15.0, gt=0, le=60)
    effort_duration_s: float = Field(1.0, gt=0, le=5)
    summary_breaths: int = Field(1, ge=1, le=100)

    @model_validator(mode="after")
    def _grid(self) -> RespiratoryScenario:
        ratio = self.output_interval_s / self.step_s
        if ratio < 1 or abs(ratio - round(ratio)) > 1e-9 * ratio:
            raise ValueError(
                f"output_interval_s = {self.output_interval_s} is not a whole "
                f"multiple of step_s = {self.step_s}"
            )
        if self.duration_s < self.output_interval_s:
            raise ValueError(
                f"duration_s = {self.duration_s} is shorter than output_interval_s "
                f"= {self.output_interval_s}"
            )
        if self.effort_duration_s >= 60.0 / self.effort_rate_per_min:
            raise ValueError(
                f"effort_duration_s = {self.effort_duration_s}; expected less than "
                f"the patient's breath period {60.0 / self.effort_rate_per_min:.3g} s"
            )
        return self
