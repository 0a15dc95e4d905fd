"""Simulation entry points of the cardiovascular twin: one case, a batch, the design."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from medtwin_ml.config import validate_input
from medtwin_ml.errors import ConfigError
from medtwin_ml.solvers.cardiovascular import _circulation as circ
from medtwin_ml.solvers.cardiovascular._models import (
    CardiovascularDevice,
    CardiovascularParameters,
    CardiovascularScenario,
)
from medtwin_ml.twin import BatchResult, Case, TimeSeriesResult, shared_scenario

__all__ = ["cases_from_design", "simulate", "simulate_batch"]


def simulate(case: Case) -> TimeSeriesResult:
    """Run one case; one row per output time from 0 to ``duration_s``.

    Columns: ``time_s`` then the signals of
    :data:`~medtwin_ml.solvers.cardiovascular._circulation.SIGNALS`; summary: the
    per-beat outcomes averaged over the last ``summary_beats`` complete beats.
    """
    batch = simulate_batch([case])
    table = pd.DataFrame({"time_s": batch.coords["time_s"]})
    for name, _, _ in circ.SIGNALS:
        table[name] = batch.outputs[name][0]
    summary = {k: float(v) for k, v in batch.summary.iloc[0].items()}
    return TimeSeriesResult(table=table, summary=summary)


def simulate_batch(cases: Sequence[Case]) -> BatchResult:
    """Run many cases at once on one time grid, vectorised over cases.

    Returns:
        coords ``{"time_s": (time,)}``, outputs ``(n_cases, time)`` per signal and a
        summary of per-beat outcomes, one row per case.

    Raises:
        ValueError: if the cases' scenarios do not share one time grid.
    """
    scenario = _shared_grid(cases)
    model = circ.Circulation.from_cases(
        [c.params for c in cases], [c.device for c in cases]
    )
    t, y = circ.run(
        model, scenario.duration_s, scenario.output_interval_s, scenario.step_s
    )
    signals = model.signals(t, y)
    beats = circ.beat_outcomes(t, y, signals, scenario.summary_beats)
    return BatchResult(
        coords={"time_s": t}, outputs=signals, summary=pd.DataFrame(beats)
    )


def cases_from_design(
    design: pd.DataFrame,
    patients: Sequence[CardiovascularParameters],
    options: dict[str, Any] | None = None,
) -> list[Case]:
    """Pair design row ``i`` (pacemaker and LVAD settings) with ``patients[i]``.

    Design columns that name a :class:`CardiovascularDevice` field set it; every
    designed case is paced. ``options`` may hold ``lvad`` (default ``True``; with
    ``False`` no pump is implanted and the ``lvad_speed_krpm`` column is ignored)
    and any :class:`CardiovascularScenario` field, shared by every case.

    Raises:
        ConfigError: on an unknown option or a value out of range.
    """
    options = dict(options or {})
    if len(design) != len(patients):
        raise ValueError(
            f"design has {len(design)} rows and {len(patients)} patients; expected "
            "one patient per row"
        )
    lvad = options.pop("lvad", True)
    if not isinstance(lvad, bool):
        raise ConfigError("options", [("lvad", lvad, "true or false")])
    scenario = validate_input(options, CardiovascularScenario, source="options")
    fields = set(CardiovascularDevice.model_fields) - {"seed"}
    cases = []
    for i, row in enumerate(design.to_dict("records")):
        settings = {k: float(v) for k, v in row.items() if k in fields}
        if not lvad:
            settings["lvad_speed_krpm"] = 0.0
        device = validate_input(
            settings, CardiovascularDevice, source=f"design row {i}"
        )
        cases.append(Case(params=patients[i], device=device, scenario=scenario))
    return cases


def _shared_grid(cases: Sequence[Case]) -> CardiovascularScenario:
    return shared_scenario(
        cases, ("duration_s", "output_interval_s", "step_s", "summary_beats")
    )
