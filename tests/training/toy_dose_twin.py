"""A small controlled ODE twin for the training tests.

``dy/dt = -k (y - yb) + dose(t) / V``: a level relaxes to its baseline ``yb`` at rate
``k`` and rises with doses given as one-minute pulses. The batch solver steps the exact
solution minute by minute, since the dose is constant within each minute.
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

NAME = "toy_dose"


class DoseParameters(BoundaryModel):
    k: float = Field(gt=0, description="relaxation rate [1/min]")
    V: float = Field(gt=0, description="distribution volume [L]")
    yb: float = Field(gt=0, description="baseline level [mg/L]")


class DoseDevice(BoundaryModel):
    seed: int = 0


class DoseScenario(BoundaryModel):
    duration_min: int = Field(ge=1)
    dose_times_min: list[int] = Field(default_factory=list)
    dose_mg: list[float] = Field(default_factory=list)


def _batch(cases: Sequence[Case]) -> BatchResult:
    duration = cases[0].scenario.duration_min
    t = np.arange(duration + 1, dtype=float)
    n = len(cases)
    dose = np.zeros((n, duration + 1))
    for i, c in enumerate(cases):
        for tm, mg in zip(c.scenario.dose_times_min, c.scenario.dose_mg, strict=True):
            dose[i, tm] += mg
    k = np.array([c.params.k for c in cases])
    v = np.array([c.params.V for c in cases])
    yb = np.array([c.params.yb for c in cases])
    y = np.empty((n, duration + 1))
    y[:, 0] = yb
    decay = np.exp(-k)
    for j in range(duration):
        target = yb + dose[:, j] / v / k
        y[:, j + 1] = target + (y[:, j] - target) * decay
    return BatchResult(
        coords={"time_min": t}, outputs={"level_mg_l": y, "dose_mg": dose}
    )


def _simulate(case: Case) -> TimeSeriesResult:
    b = _batch([case])
    return TimeSeriesResult(
        pd.DataFrame(
            {
                "time_min": b.coords["time_min"],
                **{k: v[0] for k, v in b.outputs.items()},
            }
        )
    )


def _cohort(cohort: str, n: int, seed: int) -> list[DoseParameters]:
    rng = np.random.default_rng(seed)
    return [
        DoseParameters(k=float(a), V=float(b), yb=float(c))
        for a, b, c in zip(
            rng.uniform(0.02, 0.08, n),
            rng.uniform(5, 15, n),
            rng.uniform(1, 3, n),
            strict=True,
        )
    ]


def _cases(design: pd.DataFrame, patients, options: dict) -> list[Case]:
    duration = int(options.get("duration_min", 120))
    out = []
    for row, p in zip(design.itertuples(index=False), patients, strict=True):
        out.append(
            Case(
                params=p,
                device=DoseDevice(),
                scenario=DoseScenario(
                    duration_min=duration,
                    dose_times_min=[int(row.dose_time_min)],
                    dose_mg=[float(row.dose_mg)],
                ),
            )
        )
    return out


TWIN = TwinSpec(
    name=NAME,
    title="toy dose response",
    output_kind="timeseries",
    parameters=DoseParameters,
    device=DoseDevice,
    scenario=DoseScenario,
    outputs=(Quantity("level_mg_l", "mg/L"), Quantity("dose_mg", "mg")),
    input_domain=InputDomain(
        variables=[
            DomainVariable(name="dose_time_min", unit="min", low=5, high=60),
            DomainVariable(name="dose_mg", unit="mg", low=0, high=20),
        ]
    ),
    solver_version="1",
    simulate=_simulate,
    simulate_batch=_batch,
    sample_cohort=_cohort,
    cases_from_design=_cases,
    cohorts=("default",),
)


def register_toy() -> TwinSpec:
    register(TWIN, replace=True)
    return get_twin(NAME)
