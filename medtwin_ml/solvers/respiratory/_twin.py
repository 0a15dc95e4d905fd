"""Simulation entry points of the respiratory twin: one case, a batch, the design."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from medtwin_ml.devices import ventilator
from medtwin_ml.errors import ConfigError
from medtwin_ml.solvers._integrate import rk4
from medtwin_ml.solvers.respiratory._mechanics import LungMechanics
from medtwin_ml.solvers.respiratory._models import (
    RespiratoryDevice,
    RespiratoryParameters,
    RespiratoryScenario,
)
from medtwin_ml.twin import BatchResult, Case, TimeSeriesResult, shared_scenario

__all__ = [
    "BREATH_OUTCOMES",
    "SIGNALS",
    "cases_from_design",
    "simulate",
    "simulate_batch",
]

logger = logging.getLogger(__name__)

SIGNALS = (
    ("airway_pressure_cmh2o", "cmH2O", "pressure at the airway opening"),
    ("flow_l_s", "L/s", "airway flow, positive into the patient"),
    ("volume_ml", "mL", "lung volume above the relaxed volume at PEEP"),
    ("muscle_pressure_cmh2o", "cmH2O", "inspiratory muscle pressure"),
)

BREATH_OUTCOMES = (
    ("peak_pressure_cmh2o", "cmH2O", "highest airway pressure of the breath"),
    ("plateau_pressure_cmh2o", "cmH2O", "static pressure at end of inspiration"),
    ("auto_peep_cmh2o", "cmH2O", "static pressure above PEEP at end of expiration"),
    ("total_peep_cmh2o", "cmH2O", "set PEEP plus auto-PEEP"),
    ("tidal_volume_ml", "mL", "volume delivered during inspiration"),
    ("minute_ventilation_l_min", "L/min", "tidal volume times breath rate"),
)


def simulate(case: Case) -> TimeSeriesResult:
    """Run one case; one row per output time from 0 to ``duration_s``.

    Columns: ``time_s`` then :data:`SIGNALS`; summary: :data:`BREATH_OUTCOMES`
    averaged over the last ``summary_breaths`` complete ventilator breaths.
    """
    batch = simulate_batch([case])
    table = pd.DataFrame({"time_s": batch.coords["time_s"]})
    for name, _, _ in SIGNALS:
        table[name] = batch.outputs[name][0]
    summary = {k: float(v) for k, v in batch.summary.iloc[0].items()}
    return TimeSeriesResult(table=table, summary=summary)


def simulate_batch(cases: Sequence[Case]) -> BatchResult:
    """Run many cases at once on one time grid, vectorised over cases.

    Returns:
        coords ``{"time_s": (time,)}``, outputs ``(n_cases, time)`` per signal of
        :data:`SIGNALS` and a summary with one row per case.

    Raises:
        ValueError: if the cases' scenarios do not share one time grid.
    """
    scenario = _shared_grid(cases)
    params = [c.params for c in cases]
    devices: list[RespiratoryDevice] = [c.device for c in cases]
    dt = scenario.step_s
    n_steps = round(scenario.duration_s / dt)
    t = np.arange(n_steps + 1) * dt

    prog = _program(devices, dt, n_steps)
    p_mus = _muscle_pressure([c.scenario for c in cases], t[:-1] + 0.5 * dt)
    u = np.stack(
        [prog.flow_controlled.astype(float), prog.flow_l_s, prog.pressure_cmh2o, p_mus],
        axis=-1,
    )
    lung = LungMechanics.from_cases(params, _col(devices, "peep_cmh2o"))
    logger.debug("respiratory: %s cases, %s steps", len(cases), n_steps)
    y = rk4(lung.rhs, np.zeros((len(cases), 2)), t, inputs=u)

    # Airway quantities at each step's start (right limit) and end (left limit).
    _, _, p_start = lung.branch_flows(
        np.swapaxes(y[:, :-1], 0, 1), np.swapaxes(u, 0, 1)
    )
    q1e, q2e, p_end = lung.branch_flows(
        np.swapaxes(y[:, 1:], 0, 1), np.swapaxes(u, 0, 1)
    )
    q1s, q2s, _ = lung.branch_flows(np.swapaxes(y[:, :-1], 0, 1), np.swapaxes(u, 0, 1))
    p_start, p_end = p_start.T, p_end.T
    flow_start = (q1s + q2s).T

    summary = _breath_outcomes(lung, prog, y, p_start, p_end, scenario.summary_breaths)

    every = round(scenario.output_interval_s / dt)
    keep = np.arange(0, n_steps + 1, every)
    # The last output time has no step after it: report its left limit.
    p_report = np.concatenate([p_start, p_end[:, -1:]], axis=1)[:, keep]
    q_report = np.concatenate([flow_start, (q1e + q2e).T[:, -1:]], axis=1)[:, keep]
    mus = np.concatenate([p_mus, p_mus[:, -1:]], axis=1)[:, keep]
    outputs = {
        "airway_pressure_cmh2o": p_report,
        "flow_l_s": q_report,
        "volume_ml": 1000.0 * y[:, keep].sum(axis=-1),
        "muscle_pressure_cmh2o": mus,
    }
    return BatchResult(
        coords={"time_s": t[keep]}, outputs=outputs, summary=pd.DataFrame(summary)
    )


def cases_from_design(
    design: pd.DataFrame,
    patients: Sequence[RespiratoryParameters],
    options: dict[str, Any] | None = None,
) -> list[Case]:
    """Pair design row ``i`` (ventilator settings) with ``patients[i]``.

    Design columns that name a :class:`RespiratoryDevice` field set it;
    ``options`` may hold ``mode`` (default ``"volume_control"``) and any
    :class:`RespiratoryScenario` field, shared by every case.

    Raises:
        ConfigError: on an unknown option or a value out of range.
    """
    from medtwin_ml.config import validate_input

    options = dict(options or {})
    if len(design) != len(patients):
        raise ValueError(
            f"design has {len(design)} rows and {len(patients)} patients; expected "
            "one patient per row"
        )
    mode = options.pop("mode", "volume_control")
    scenario = validate_input(options, RespiratoryScenario, source="options")
    fields = set(RespiratoryDevice.model_fields)
    cases = []
    for i, row in enumerate(design.to_dict("records")):
        settings = {k: float(v) for k, v in row.items() if k in fields}
        device = validate_input(
            {"mode": mode, **settings}, RespiratoryDevice, source=f"design row {i}"
        )
        cases.append(Case(params=patients[i], device=device, scenario=scenario))
    return cases


def _shared_grid(cases: Sequence[Case]) -> RespiratoryScenario:
    return shared_scenario(
        cases, ("duration_s", "step_s", "output_interval_s", "summary_breaths")
    )


def _col(models: Sequence[Any], name: str) -> np.ndarray:
    return np.array([getattr(m, name) for m in models], dtype=float)


def _program(
    devices: Sequence[RespiratoryDevice], dt: float, n_steps: int
) -> ventilator.VentilatorProgram:
    try:
        return ventilator.program(
            volume_control=np.array([d.mode == "volume_control" for d in devices]),
            peep_cmh2o=_col(devices, "peep_cmh2o"),
            rate_per_min=_col(devices, "rate_per_min"),
            ie_ratio=_col(devices, "ie_ratio"),
            tidal_volume_ml=_col(devices, "tidal_volume_ml"),
            inspiratory_pressure_cmh2o=_col(devices, "inspiratory_pressure_cmh2o"),
            inspiratory_pause_s=_col(devices, "inspiratory_pause_s"),
            dt=dt,
            n_steps=n_steps,
        )
    except ValueError as exc:
        raise ConfigError(
            "device", [("timing", str(exc), "a feasible breath")]
        ) from None


def _muscle_pressure(
    scenarios: Sequence[RespiratoryScenario], t: np.ndarray
) -> np.ndarray:
    """``P_eff sin^2(pi s / T_eff)`` in the first ``T_eff`` of each own breath."""
    amp = _col(scenarios, "effort_pressure_cmh2o")[:, None]
    period = 60.0 / _col(scenarios, "effort_rate_per_min")[:, None]
    width = _col(scenarios, "effort_duration_s")[:, None]
    s = np.mod(t[None, :], period)
    return np.where(s < width, amp * np.sin(np.pi * s / width) ** 2, 0.0)


def _breath_outcomes(
    lung: LungMechanics,
    prog: ventilator.VentilatorProgram,
    y: np.ndarray,
    p_start: np.ndarray,
    p_end: np.ndarray,
    n_breaths: int,
) -> dict[str, np.ndarray]:
    """Outcomes of the last ``n_breaths`` complete breaths, averaged; ``(batch,)``.

    The last breath that ends inside the record is the one before the breath of
    the final step (which may be cut short). Breaths are identical in timing, so
    a breath ``b`` spans steps ``[b P, (b + 1) P)`` with ``P`` steps a period.
    """
    n = y.shape[0]
    rows = np.arange(n)
    volume = y.sum(axis=-1)  # (batch, time), L
    c_tot = lung.total_compliance_l_per_cmh2o
    period_steps = np.round(prog.period_s / (prog.breath.shape[1] and 1))
    del period_steps
    last = prog.breath[:, -1] - 1
    acc = {name: np.zeros(n) for name, _, _ in BREATH_OUTCOMES}
    for j in range(n_breaths):
        b = last - j
        valid = b >= 0
        in_breath = prog.breath == b[:, None]
        start = np.argmax(in_breath, axis=1)
        end = start + in_breath.sum(axis=1)  # state index at the breath's end
        expiring = in_breath & (prog.phase == ventilator.EXPIRATION)
        end_insp = np.argmax(expiring, axis=1)
        peak = np.max(np.where(in_breath, np.maximum(p_start, p_end), -np.inf), axis=1)
        v_end_insp = volume[rows, end_insp]
        v_start = volume[rows, start]
        v_end = volume[rows, end]
        tidal = (v_end_insp - v_start) * 1000.0
        per = {
            "peak_pressure_cmh2o": peak,
            "plateau_pressure_cmh2o": lung.peep + v_end_insp / c_tot,
            "auto_peep_cmh2o": v_end / c_tot,
            "total_peep_cmh2o": lung.peep + v_end / c_tot,
            "tidal_volume_ml": tidal,
            "minute_ventilation_l_min": tidal * 60.0 / prog.period_s / 1000.0,
        }
        for name, value in per.items():
            acc[name] += np.where(valid, value, np.nan)
    return {name: value / n_breaths for name, value in acc.items()}
