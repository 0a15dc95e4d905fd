"""Closed-loop lumped circulation with time-varying elastance ventricles.

The loop of Smith et al. (Med Eng Phys 26:131, 2004)::

    pulmonary vein -> mitral -> LV -> aortic valve -> aorta -> R_sys -> vena cava
        -> tricuspid -> RV -> pulmonary valve -> pulmonary artery -> R_pul -> back

Each ventricle's free wall is a time-varying elastance between its end-systolic
(linear) and end-diastolic (exponential) pressure-volume relations, weighted by the
activation ``e(t) = exp(-B (t - C)^2)``; both sit in a pericardium whose pressure
adds to theirs. Vessels are linear elastances with zero unstressed volume. Valves
open on pressure and close on flow: their flow obeys ``L dQ/dt = dP - R Q`` while
open, and relaxes to zero within ``_VALVE_CLOSE_S`` once closed.

Differences from the published model, each stated where it acts:

* No septum. Smith et al. couple the free walls through the septal volume, found
  from an implicit equation at every step; leaving it out keeps the right-hand side
  explicit and vectorised. Ventricular interaction therefore acts only through the
  pericardium.
* Atria are lumped into the venous compartments. Atrial systole adds a Gaussian
  pressure pulse to the pulmonary vein and vena cava ``AV delay`` before the
  ventricular activation peak, so that pacing with a chosen AV delay changes filling.
* Activation timing is scaled by ``sqrt(T / 1 s)`` (Bazett-like), so systole fits
  into short beats; at 60 beats per minute it is the published ``e(t)``.
* The baroreflex is a reduced form of Ursino (Am J Physiol 275:H1733, 1998): one
  sigmoid of low-pass filtered aortic pressure drives first-order changes of heart
  rate and systemic resistance, without Ursino's pure delays and venous effectors.

State vector, shape ``(batch, 15)``: volumes (mL) of LV, aorta, vena cava, RV,
pulmonary artery, pulmonary vein; flows (mL/s) through mitral, aortic, tricuspid and
pulmonary valves and the LVAD; beat phase (beats); filtered aortic pressure (mmHg);
fractional reflex changes of heart rate and systemic resistance.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medtwin_ml.devices.lvad import SIMAAN_2009, PumpCurve
from medtwin_ml.solvers._integrate import rk4
from medtwin_ml.solvers.cardiovascular._models import (
    CardiovascularDevice,
    CardiovascularParameters,
)

__all__ = ["BEAT_OUTCOMES", "SIGNALS", "Circulation", "beat_outcomes", "run"]

logger = logging.getLogger(__name__)

V_LV, V_AO, V_VC, V_RV, V_PA, V_PU = range(6)
Q_MT, Q_AV, Q_TC, Q_PV, Q_LVAD = range(6, 11)
PHASE, P_FILT, X_HR, X_R = range(11, 15)
N_STATE = 15

# Initial volumes (lv, ao, vc, rv, pa, pu) as fractions of the stressed volume: the
# periodic steady state of the default patient at beat onset (240 s simulated,
# converged to 0.01 mL), so that the default patient starts settled. Another
# patient settles towards its own state over tens of seconds, the venous
# reservoirs being large.
_V_INIT_FRACTION = (
    np.array([111.665, 100.495, 690.046, 121.216, 23.185, 453.393]) / 1500.0
)

_VALVE_CLOSE_S = 0.002  # relaxation of a closed valve's residual flow to zero
_ATRIAL_PEAK_AFTER_EVENT_S = 0.09  # atrial contraction peaks after its activation
_ATRIAL_WIDTH_FACTOR = 4.0  # atrial Gaussian is this much narrower in B
_BARO_FILTER_S = 2.0  # afferent low-pass, Ursino 1998 order of magnitude
_BARO_HR_S = 2.0  # heart-period effector time constant
_BARO_R_S = 6.0  # resistance effector time constant
_EXP_CAP = 30.0  # exponent cap of the exponential EDPVR/pericardium (no overflow)

SIGNALS = (
    ("p_lv_mmhg", "mmHg", "left ventricular pressure"),
    ("p_ao_mmhg", "mmHg", "aortic pressure"),
    ("p_vc_mmhg", "mmHg", "vena cava pressure"),
    ("p_rv_mmhg", "mmHg", "right ventricular pressure"),
    ("p_pa_mmhg", "mmHg", "pulmonary artery pressure"),
    ("p_pu_mmhg", "mmHg", "pulmonary vein pressure"),
    ("v_lv_ml", "mL", "left ventricular volume"),
    ("v_rv_ml", "mL", "right ventricular volume"),
    ("v_ao_ml", "mL", "aortic stressed volume"),
    ("q_mitral_ml_s", "mL/s", "mitral valve flow"),
    ("q_aortic_ml_s", "mL/s", "aortic valve flow"),
    ("q_tricuspid_ml_s", "mL/s", "tricuspid valve flow"),
    ("q_pulmonary_valve_ml_s", "mL/s", "pulmonary valve flow"),
    ("q_systemic_ml_s", "mL/s", "flow through the systemic resistance"),
    ("q_pulmonary_ml_s", "mL/s", "flow through the pulmonary resistance"),
    ("q_lvad_ml_s", "mL/s", "LVAD pump flow"),
    ("heart_rate_bpm", "1/min", "heart rate"),
)

BEAT_OUTCOMES = (
    ("systolic_pressure_mmhg", "mmHg", "peak aortic pressure"),
    ("diastolic_pressure_mmhg", "mmHg", "lowest aortic pressure"),
    ("mean_arterial_pressure_mmhg", "mmHg", "time mean of aortic pressure"),
    ("stroke_volume_ml", "mL", "LV end-diastolic minus end-systolic volume"),
    ("cardiac_output_l_min", "L/min", "aortic valve plus LVAD flow, beat mean"),
    ("ejection_fraction_pct", "%", "stroke volume over end-diastolic volume"),
    ("lv_end_diastolic_volume_ml", "mL", "largest LV volume of the beat"),
    ("lv_end_systolic_volume_ml", "mL", "smallest LV volume of the beat"),
    ("lv_peak_pressure_mmhg", "mmHg", "largest LV pressure of the beat"),
    ("lvad_flow_l_min", "L/min", "LVAD flow, beat mean"),
    ("heart_rate_bpm", "1/min", "heart rate, beat mean"),
)


@dataclass
class Circulation:
    """Parameters of a batch as arrays of shape ``(batch,)``, ready for the RHS."""

    p: dict[str, np.ndarray]
    paced: np.ndarray
    pacing_rate_bpm: np.ndarray
    av_delay_s: np.ndarray
    lvad_speed_krpm: np.ndarray
    has_lvad: np.ndarray
    baroreflex: np.ndarray
    pump: PumpCurve = SIMAAN_2009

    @classmethod
    def from_cases(
        cls,
        params: Sequence[CardiovascularParameters],
        devices: Sequence[CardiovascularDevice],
    ) -> Circulation:
        names = [
            n
            for n, f in CardiovascularParameters.model_fields.items()
            if f.annotation is float
        ]
        p = {n: np.array([getattr(x, n) for x in params], dtype=float) for n in names}
        paced = np.array([d.pacing_rate_bpm is not None for d in devices])
        rate = np.array(
            [
                d.pacing_rate_bpm if d.pacing_rate_bpm is not None else np.nan
                for d in devices
            ],
            dtype=float,
        )
        av = np.where(
            paced,
            np.array([d.av_delay_ms for d in devices], dtype=float),
            p["intrinsic_av_delay_ms"],
        )
        speed = np.array([d.lvad_speed_krpm for d in devices], dtype=float)
        return cls(
            p=p,
            paced=paced,
            pacing_rate_bpm=np.where(paced, rate, p["heart_rate_bpm"]),
            av_delay_s=av / 1000.0,
            lvad_speed_krpm=speed,
            has_lvad=speed > 0,
            baroreflex=np.array([x.baroreflex for x in params]),
        )

    def initial_state(self) -> np.ndarray:
        """Published initial volumes scaled to each stressed volume; ``(batch, 15)``."""
        n = self.paced.size
        y0 = np.zeros((n, N_STATE))
        y0[:, :6] = self.p["stressed_blood_volume_ml"][:, None] * _V_INIT_FRACTION
        y0[:, P_FILT] = self.p["baroreflex_set_point_mmhg"]
        return y0

    def evaluate(self, t: np.ndarray | float, y: np.ndarray) -> dict[str, np.ndarray]:
        """Pressures, flows and derivatives of states ``y`` at time ``t``.

        ``y`` is ``(..., batch, 15)`` and ``t`` broadcasts against ``(..., batch)``;
        every returned array has shape ``(..., batch)``.
        """
        p = self.p
        heart_rate = np.where(
            self.paced, self.pacing_rate_bpm, p["heart_rate_bpm"] * (1.0 + y[..., X_HR])
        )
        period = 60.0 / heart_rate
        scale = np.sqrt(period)
        tau = np.mod(y[..., PHASE], 1.0) * period

        b = p["activation_b_per_s2"] / scale**2
        e_v = np.exp(-b * (tau - p["activation_c_s"] * scale) ** 2)
        atrial_peak = (
            p["activation_c_s"] * scale
            - self.av_delay_s
            - (p["activation_c_s"] - _ATRIAL_PEAK_AFTER_EVENT_S) * scale
        )
        d = np.mod(tau - atrial_peak + 0.5 * period, period) - 0.5 * period
        e_a = np.exp(-_ATRIAL_WIDTH_FACTOR * b * d**2)

        v_lv, v_rv = y[..., V_LV], y[..., V_RV]
        p_pcd = p["pericardium_p0_mmhg"] * (
            np.exp(
                np.minimum(
                    p["pericardium_lambda_per_ml"]
                    * (v_lv + v_rv - p["pericardium_v0_ml"]),
                    _EXP_CAP,
                )
            )
            - 1.0
        )
        p_lv = (
            _ventricle(
                e_v,
                v_lv,
                p["lv_ees_mmhg_per_ml"],
                p["lv_p0_mmhg"],
                p["lv_lambda_per_ml"],
            )
            + p_pcd
        )
        p_rv = (
            _ventricle(
                e_v,
                v_rv,
                p["rv_ees_mmhg_per_ml"],
                p["rv_p0_mmhg"],
                p["rv_lambda_per_ml"],
            )
            + p_pcd
        )
        p_ao = p["aorta_elastance_mmhg_per_ml"] * y[..., V_AO]
        p_vc = (
            p["vena_cava_elastance_mmhg_per_ml"] * y[..., V_VC]
            + p["atrial_kick_right_mmhg"] * e_a
        )
        p_pa = p["pulmonary_artery_elastance_mmhg_per_ml"] * y[..., V_PA]
        p_pu = (
            p["pulmonary_vein_elastance_mmhg_per_ml"] * y[..., V_PU]
            + p["atrial_kick_left_mmhg"] * e_a
        )

        r_sys = p["systemic_resistance_mmhg_s_per_ml"] * (1.0 + y[..., X_R])
        q_sys = (p_ao - p_vc) / r_sys
        q_pul = (p_pa - p_pu) / p["pulmonary_resistance_mmhg_s_per_ml"]

        q_mt, dq_mt = _valve(
            p_pu - p_lv,
            y[..., Q_MT],
            p["mitral_resistance_mmhg_s_per_ml"],
            p["mitral_inertance_mmhg_s2_per_ml"],
        )
        q_av, dq_av = _valve(
            p_lv - p_ao,
            y[..., Q_AV],
            p["aortic_resistance_mmhg_s_per_ml"],
            p["aortic_inertance_mmhg_s2_per_ml"],
        )
        q_tc, dq_tc = _valve(
            p_vc - p_rv,
            y[..., Q_TC],
            p["tricuspid_resistance_mmhg_s_per_ml"],
            p["tricuspid_inertance_mmhg_s2_per_ml"],
        )
        q_pv, dq_pv = _valve(
            p_rv - p_pa,
            y[..., Q_PV],
            p["pulmonary_valve_resistance_mmhg_s_per_ml"],
            p["pulmonary_valve_inertance_mmhg_s2_per_ml"],
        )
        q_lvad = np.where(self.has_lvad, y[..., Q_LVAD], 0.0)
        dq_lvad = np.where(
            self.has_lvad,
            self.pump.flow_derivative(self.lvad_speed_krpm, q_lvad, p_lv, p_ao),
            0.0,
        )

        sigma = 1.0 / (
            1.0
            + np.exp(
                (y[..., P_FILT] - p["baroreflex_set_point_mmhg"])
                / p["baroreflex_slope_mmhg"]
            )
        )
        drive = 2.0 * sigma - 1.0
        on = self.baroreflex
        return {
            "p_lv": p_lv,
            "p_ao": p_ao,
            "p_vc": p_vc,
            "p_rv": p_rv,
            "p_pa": p_pa,
            "p_pu": p_pu,
            "q_mt": q_mt,
            "q_av": q_av,
            "q_tc": q_tc,
            "q_pv": q_pv,
            "q_sys": q_sys,
            "q_pul": q_pul,
            "q_lvad": q_lvad,
            "heart_rate": heart_rate,
            "d": (
                q_mt - q_av - q_lvad,
                q_av + q_lvad - q_sys,
                q_sys - q_tc,
                q_tc - q_pv,
                q_pv - q_pul,
                q_pul - q_mt,
                dq_mt,
                dq_av,
                dq_tc,
                dq_pv,
                dq_lvad,
                heart_rate / 60.0,
                np.where(on, (p_ao - y[..., P_FILT]) / _BARO_FILTER_S, 0.0),
                np.where(
                    on,
                    (p["baroreflex_heart_rate_gain"] * drive - y[..., X_HR])
                    / _BARO_HR_S,
                    0.0,
                ),
                np.where(
                    on,
                    (p["baroreflex_resistance_gain"] * drive - y[..., X_R]) / _BARO_R_S,
                    0.0,
                ),
            ),
        }

    def rhs(self, t: float, y: np.ndarray, u: np.ndarray | None) -> np.ndarray:
        """``dy/dt`` for the integrator, ``(batch, 15)``; ``u`` is unused."""
        return np.stack(self.evaluate(t, y)["d"], axis=-1)

    def signals(self, t: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        """Reported signals of states ``y`` ``(batch, time, 15)``; each ``(batch,
        time)`` with the units of :data:`SIGNALS`."""
        ev = self.evaluate(t[:, None], np.swapaxes(y, 0, 1))
        values = {
            "p_lv_mmhg": ev["p_lv"],
            "p_ao_mmhg": ev["p_ao"],
            "p_vc_mmhg": ev["p_vc"],
            "p_rv_mmhg": ev["p_rv"],
            "p_pa_mmhg": ev["p_pa"],
            "p_pu_mmhg": ev["p_pu"],
            "v_lv_ml": np.swapaxes(y[..., V_LV], 0, 1),
            "v_rv_ml": np.swapaxes(y[..., V_RV], 0, 1),
            "v_ao_ml": np.swapaxes(y[..., V_AO], 0, 1),
            "q_mitral_ml_s": ev["q_mt"],
            "q_aortic_ml_s": ev["q_av"],
            "q_tricuspid_ml_s": ev["q_tc"],
            "q_pulmonary_valve_ml_s": ev["q_pv"],
            "q_systemic_ml_s": ev["q_sys"],
            "q_pulmonary_ml_s": ev["q_pul"],
            "q_lvad_ml_s": ev["q_lvad"],
            "heart_rate_bpm": ev["heart_rate"],
        }
        return {k: np.swapaxes(v, 0, 1) for k, v in values.items()}


def _ventricle(e, v, ees, p0, lam):
    edpvr = p0 * (np.exp(np.minimum(lam * v, _EXP_CAP)) - 1.0)
    return e * ees * v + (1.0 - e) * edpvr


def _valve(dp, q, r, inertance):
    """Forward flow and ``dQ/dt`` of a valve: open while pushed or still flowing."""
    is_open = (dp > 0.0) | (q > 0.0)
    dq = np.where(is_open, (dp - r * q) / inertance, -q / _VALVE_CLOSE_S)
    return np.maximum(q, 0.0), dq


def run(
    circ: Circulation, duration_s: float, output_interval_s: float, step_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Integrate a batch from its initial state.

    Returns:
        ``(t, y)``: output times ``(time,)`` in s and states ``(batch, time, 15)``.
    """
    n_out = round(duration_s / output_interval_s)
    t = np.arange(n_out + 1) * output_interval_s
    substeps = round(output_interval_s / step_s)
    logger.debug(
        "circulation: %s cases, %s outputs, %s substeps",
        circ.paced.size,
        t.size,
        substeps,
    )
    y = rk4(circ.rhs, circ.initial_state(), t, substeps=substeps)
    return t, y


def beat_outcomes(
    t: np.ndarray, y: np.ndarray, signals: dict[str, np.ndarray], n_beats: int
) -> dict[str, np.ndarray]:
    """Per-beat outcomes averaged over the last ``n_beats`` complete beats.

    Beats are delimited by the integer crossings of the phase state, sampled on the
    output grid. A case with fewer complete beats than asked (after the first,
    which starts from the initial guess) gets NaN.

    Returns:
        one array ``(batch,)`` per name in :data:`BEAT_OUTCOMES`.
    """
    beat = np.floor(y[..., PHASE]).astype(int)  # (batch, time)
    last = beat[:, -1]  # the beat in progress at the end is incomplete
    acc = {name: np.zeros(beat.shape[0]) for name, _, _ in BEAT_OUTCOMES}
    for j in range(1, n_beats + 1):
        mask = beat == (last - j)[:, None]
        p_ao, v_lv = signals["p_ao_mmhg"], signals["v_lv_ml"]
        edv = _masked(np.max, v_lv, mask, -np.inf)
        esv = _masked(np.min, v_lv, mask, np.inf)
        forward = signals["q_aortic_ml_s"] + signals["q_lvad_ml_s"]
        per = {
            "systolic_pressure_mmhg": _masked(np.max, p_ao, mask, -np.inf),
            "diastolic_pressure_mmhg": _masked(np.min, p_ao, mask, np.inf),
            "mean_arterial_pressure_mmhg": _mean(p_ao, mask),
            "stroke_volume_ml": edv - esv,
            "cardiac_output_l_min": _mean(forward, mask) * 0.06,
            "ejection_fraction_pct": 100.0 * (edv - esv) / edv,
            "lv_end_diastolic_volume_ml": edv,
            "lv_end_systolic_volume_ml": esv,
            "lv_peak_pressure_mmhg": _masked(
                np.max, signals["p_lv_mmhg"], mask, -np.inf
            ),
            "lvad_flow_l_min": _mean(signals["q_lvad_ml_s"], mask) * 0.06,
            "heart_rate_bpm": _mean(signals["heart_rate_bpm"], mask),
        }
        valid = (last - j) >= 1
        for name, value in per.items():
            acc[name] += np.where(valid, value, np.nan)
    return {name: value / n_beats for name, value in acc.items()}


def _masked(reduce, x, mask, fill):
    out = reduce(np.where(mask, x, fill), axis=1)
    return np.where(np.isfinite(out), out, np.nan)


def _mean(x, mask):
    count = mask.sum(axis=1)
    total = np.where(mask, x, 0.0).sum(axis=1)
    return np.divide(total, count, out=np.full(count.shape, np.nan), where=count > 0)
