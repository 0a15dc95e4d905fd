"""Closed-form checks of the respiratory solver (one compartment, passive).

With constant-flow volume control the periodic state has end-expiratory volume
``V_ee = VT x / (1 - x)``, ``x = exp(-Te / tau)``, ``tau = R C``, hence::

    peak = PEEP + R VT / T_flow + (VT + V_ee) / C,  plateau = PEEP + (VT + V_ee) / C,
    auto-PEEP = V_ee / C

With pressure control ``dP`` the volume relaxes as ``V(t) = C dP + (V0 - C dP)
exp(-t / tau)``, so the measured ``tau`` must equal ``R C``.
"""

from __future__ import annotations

import math

import numpy as np

from medtwin_ml.solvers.respiratory._models import (
    RespiratoryDevice,
    RespiratoryParameters,
    RespiratoryScenario,
)
from medtwin_ml.solvers.respiratory._twin import simulate, simulate_batch
from medtwin_ml.twin import Case, CheckResult

__all__ = ["closed_form_volume_control", "verification"]

# Constant flow is integrated exactly; the exponential expiration by RK4 at
# dt / tau <= 1/80 has a relative error near (dt/tau)^5 / 120 < 1e-11, so the
# closed forms must hold to rounding; 1e-6 cmH2O leaves room for it.
_PRESSURE_TOL = 1e-6
_TAU_REL_TOL = 1e-6


def closed_form_volume_control(
    r_cmh2o_s_per_l: float,
    c_ml_per_cmh2o: float,
    peep: float,
    vt_ml: float,
    t_flow_s: float,
    t_exp_s: float,
) -> dict[str, float]:
    """Periodic peak, plateau and auto-PEEP (cmH2O) of constant-flow ventilation."""
    c = c_ml_per_cmh2o / 1000.0
    vt = vt_ml / 1000.0
    x = math.exp(-t_exp_s / (r_cmh2o_s_per_l * c))
    v_ee = vt * x / (1.0 - x)
    return {
        "peak_pressure_cmh2o": peep + r_cmh2o_s_per_l * vt / t_flow_s + (vt + v_ee) / c,
        "plateau_pressure_cmh2o": peep + (vt + v_ee) / c,
        "auto_peep_cmh2o": v_ee / c,
    }


def verification() -> list[CheckResult]:
    """Peak, plateau, auto-PEEP, the RC time constant and the two-compartment
    reduction; well under a second."""
    checks = []
    # Normal lung (tau 0.4 s) and an obstructed one (tau 1.0 s, Te 2 s: auto-PEEP),
    # in one batch. Timings are whole numbers of 5 ms steps, so no rounding of the
    # breath; after 14 breaths the start-up transient has shrunk below 1e-12.
    specs = (
        ("normal", 8.0, 50.0, 15.0, 1.0 / 3.0),
        ("obstructed", 20.0, 50.0, 20.0, 0.5),
    )
    cases, expected = [], []
    for _, r, c, rate, ie in specs:
        device = RespiratoryDevice(
            peep_cmh2o=5.0,
            rate_per_min=rate,
            ie_ratio=ie,
            tidal_volume_ml=500.0,
            inspiratory_pause_s=0.2,
        )
        params = RespiratoryParameters(
            airway_resistance_cmh2o_s_per_l=r,
            resistance_1_cmh2o_s_per_l=0.0,
            compliance_1_ml_per_cmh2o=c,
        )
        period = 60.0 / rate
        ti = period * ie / (1.0 + ie)
        expected.append(
            closed_form_volume_control(r, c, 5.0, 500.0, ti - 0.2, period - ti)
        )
        cases.append(Case(params, device, RespiratoryScenario(duration_s=45.0)))
    summary = simulate_batch(cases).summary
    for i, (label, *_) in enumerate(specs):
        for key, value in expected[i].items():
            got = float(summary[key].iloc[i])
            err = abs(got - value)
            checks.append(
                CheckResult(
                    name=f"volume control {key} ({label})",
                    passed=err <= _PRESSURE_TOL,
                    measured=err,
                    tolerance=_PRESSURE_TOL,
                    detail=f"simulated {got:.9g}, closed form {value:.9g}",
                )
            )
    checks.append(_time_constant_check())
    checks.append(_two_compartment_check())
    return checks


def _time_constant_check() -> CheckResult:
    r, c, dp = 10.0, 40.0, 15.0
    params = RespiratoryParameters(
        airway_resistance_cmh2o_s_per_l=r,
        resistance_1_cmh2o_s_per_l=0.0,
        compliance_1_ml_per_cmh2o=c,
    )
    device = RespiratoryDevice(
        mode="pressure_control",
        inspiratory_pressure_cmh2o=dp,
        rate_per_min=10.0,
        ie_ratio=0.5,
    )
    scenario = RespiratoryScenario(duration_s=1.0, output_interval_s=0.005)
    table = simulate(Case(params, device, scenario)).table
    t = table["time_s"].to_numpy()
    v = table["volume_ml"].to_numpy()
    inside = (t > 0.05) & (t < 1.0)
    tau = -t[inside] / np.log1p(-v[inside] / (c * dp))
    tau_exact = r * c / 1000.0
    err = float(np.max(np.abs(tau / tau_exact - 1.0)))
    return CheckResult(
        name="pressure control RC time constant",
        passed=err <= _TAU_REL_TOL,
        measured=err,
        tolerance=_TAU_REL_TOL,
        detail=f"tau from V(t) against R C = {tau_exact:g} s",
    )


def _two_compartment_check() -> CheckResult:
    """Two equal compartments behind a shared airway act as one lung with
    ``R = R0 + R1 / 2`` and ``C = 2 C1``."""
    two = RespiratoryParameters(
        n_compartments=2,
        airway_resistance_cmh2o_s_per_l=4.0,
        resistance_1_cmh2o_s_per_l=6.0,
        resistance_2_cmh2o_s_per_l=6.0,
        compliance_1_ml_per_cmh2o=25.0,
        compliance_2_ml_per_cmh2o=25.0,
    )
    one = RespiratoryParameters(
        airway_resistance_cmh2o_s_per_l=7.0,
        resistance_1_cmh2o_s_per_l=0.0,
        compliance_1_ml_per_cmh2o=50.0,
    )
    scenario = RespiratoryScenario(duration_s=8.0)
    cases = [
        Case(p, RespiratoryDevice(mode=mode), scenario)
        for mode in ("volume_control", "pressure_control")
        for p in (two, one)
    ]
    out = simulate_batch(cases).outputs["airway_pressure_cmh2o"]
    err = float(max(np.max(np.abs(out[0] - out[1])), np.max(np.abs(out[2] - out[3]))))
    return CheckResult(
        name="two equal compartments reduce to one",
        passed=err <= _PRESSURE_TOL,
        measured=err,
        tolerance=_PRESSURE_TOL,
        detail="largest airway pressure difference, both modes, cmH2O",
    )
