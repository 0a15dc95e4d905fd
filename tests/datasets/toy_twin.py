"""A tiny twin for the dataset tests: first-order uptake and elimination of a dose.

A patient eliminates a drug at rate ``k_per_min`` from an initial level ``y0_mg_l``;
the device delivers ``gain * dose_mg`` spread over the run. The exact solution of
``dy/dt = -k y + u`` with constant ``u`` gives each output in closed form, so the
batch solver is a few numpy lines and any stored value can be checked exactly.

Importable on its own (``tests.datasets.toy_twin``) so that a child process or a Dask
worker can register the same twin.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pydantic import Field

from medtwin_ml.config import BoundaryModel
from medtwin_ml.registry import get_twin, register
from medtwin_ml.twin import (
    BatchResult,
    Case,
    DomainVariable,
    InputDomain,
    Quantity,
    TimeSeriesResult,
    TwinSpec,
)

NAME = "toy_uptake"


class ToyParameters(BoundaryModel):
    k_per_min: float = Field(default=0.1, gt=0, description="Elimination rate, 1/min.")
    y0_mg_l: float = Field(default=2.0, ge=0, description="Initial level, mg/L.")
    label: str = "virtual"


class ToyDevice(BoundaryModel):
    gain: float = Field(default=1.0, ge=0, description="Delivery gain, 1.")


class ToyScenario(BoundaryModel):
    duration_min: int = Field(default=20, ge=1, description="Run length, min.")
    dose_mg: float = Field(default=1.0, ge=0, description="Dose over the run, mg.")


DOMAIN = InputDomain(
    variables=[
        DomainVariable(name="gain", unit="1", low=0.5, high=2.0),
        DomainVariable(name="dose_mg", unit="mg", low=0.0, high=10.0),
    ]
)


def _batch(cases: Sequence[Case]) -> BatchResult:
    durations = {c.scenario.duration_min for c in cases}
    if len(durations) != 1:
        raise ValueError(f"cases of one batch must share duration_min; got {durations}")
    duration = durations.pop()
    t = np.arange(duration + 1, dtype=float)
    k = np.array([c.params.k_per_min for c in cases])[:, None]
    y0 = np.array([c.params.y0_mg_l for c in cases])[:, None]
    u = np.array([c.device.gain * c.scenario.dose_mg / duration for c in cases])[
        :, None
    ]
    decay = np.exp(-k * t)
    y = y0 * decay + u / k * (1.0 - decay)
    rate = -k * y + u
    # A small field per case, to exercise outputs with a multi-dimensional grid.
    field = y[:, -1, None, None] * np.arange(6, dtype=float).reshape(1, 2, 3)
    summary = pd.DataFrame({"peak_mg_l": y.max(axis=1)})
    return BatchResult(
        coords={"time_min": t},
        outputs={"level_mg_l": y, "rate_mg_l_per_min": rate, "field_mg_l": field},
        summary=summary,
    )


def _simulate(case: Case) -> TimeSeriesResult:
    batch = _batch([case])
    table = pd.DataFrame(
        {
            "time_min": batch.coords["time_min"],
            "level_mg_l": batch.outputs["level_mg_l"][0],
        }
    )
    return TimeSeriesResult(table)


def _sample_cohort(cohort: str, n: int, seed: int) -> list[ToyParameters]:
    rng = np.random.default_rng([seed, 0 if cohort == "adults" else 1])
    k = rng.uniform(0.05, 0.5, n)
    y0 = rng.uniform(0.0, 5.0, n)
    return [
        ToyParameters(k_per_min=float(a), y0_mg_l=float(b), label=f"{cohort}-{i}")
        for i, (a, b) in enumerate(zip(k, y0, strict=True))
    ]


def _cases_from_design(
    design: pd.DataFrame, patients: Sequence[ToyParameters], options: dict
) -> list[Case]:
    duration = int(options.get("duration_min", 20))
    return [
        Case(
            params=p,
            device=ToyDevice(gain=float(row.gain)),
            scenario=ToyScenario(duration_min=duration, dose_mg=float(row.dose_mg)),
        )
        for row, p in zip(design.itertuples(index=False), patients, strict=True)
    ]


TWIN = TwinSpec(
    name=NAME,
    title="toy uptake and elimination",
    output_kind="timeseries",
    parameters=ToyParameters,
    device=ToyDevice,
    scenario=ToyScenario,
    outputs=(
        Quantity("time_min", "min"),
        Quantity("level_mg_l", "mg/L"),
        Quantity("rate_mg_l_per_min", "mg/L/min"),
        Quantity("field_mg_l", "mg/L"),
    ),
    input_domain=DOMAIN,
    solver_version="1.0",
    simulate=_simulate,
    simulate_batch=_batch,
    cases_from_design=_cases_from_design,
    sample_cohort=_sample_cohort,
    cohorts=("adults", "children"),
)


def register_toy() -> TwinSpec:
    """Register the toy twin (idempotent) and return it."""
    register(TWIN, replace=True)
    return get_twin(NAME)
