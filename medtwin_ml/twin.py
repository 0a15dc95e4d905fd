"""How a twin describes itself to the rest of the platform.

A twin is a full solver plus the typed models of what it takes and what it returns.
Everything else (``simulate``, ``generate``, ``serve``, ``validate``) works from a
:class:`TwinSpec` alone, with no special case for any twin.

A twin declares:

* ``parameters``, ``device`` and ``scenario``: pydantic models of its inputs (the
  *case*), each field's unit in its name or description;
* ``outputs``: the quantities it returns, each a :class:`Quantity` with its unit;
* ``input_domain``: the declared bounds of the inputs a dataset samples, inside which
  a surrogate may be trusted;
* ``simulate``: the reference solver, one case at a time;
* optionally ``simulate_batch`` (many cases at once, for datasets) and
  ``verification`` (the solver's own checks against exact solutions).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from medtwin_ml._io import atomic_path

__all__ = [
    "BatchResult",
    "Case",
    "CheckResult",
    "DomainVariable",
    "FieldResult",
    "InputDomain",
    "Quantity",
    "TimeSeriesResult",
    "TwinSpec",
    "field_unit",
    "shared_scenario",
]


@dataclass(frozen=True)
class Quantity:
    """A named quantity with its unit: ``Quantity("glucose_mg_dl", "mg/dL")``.

    ``name`` carries the unit as a suffix wherever the quantity crosses a boundary.
    """

    name: str
    unit: str
    description: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "unit": self.unit, "description": self.description}


class DomainVariable(BaseModel):
    """One input dimension of a domain: a named, bounded, unit-bearing quantity."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    name: str
    unit: str
    low: float
    high: float
    description: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> DomainVariable:
        if not self.low <= self.high:
            raise ValueError(
                f"bounds of {self.name!r} are out of order: low {self.low} > "
                f"high {self.high}"
            )
        return self


class InputDomain(BaseModel):
    """The box of inputs a dataset samples and a surrogate is trusted in.

    The box is the first test of validity; :mod:`medtwin_ml.validation` adds a
    distance to the training data on top of it.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    variables: list[DomainVariable] = Field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.variables]

    def variable(self, name: str) -> DomainVariable:
        for var in self.variables:
            if var.name == name:
                return var
        raise KeyError(f"no variable {name!r} in the domain; it has {self.names}")

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds, shape ``(n_variables,)`` each."""
        low = np.array([v.low for v in self.variables], dtype=float)
        high = np.array([v.high for v in self.variables], dtype=float)
        return low, high

    def outside(self, values: Mapping[str, float], rel_tol: float = 1e-9) -> list[str]:
        """Reasons why ``values`` lie outside the box; empty when inside.

        Variables absent from ``values`` are not judged.
        """
        reasons = []
        for var in self.variables:
            if var.name not in values:
                continue
            x = float(values[var.name])
            slack = rel_tol * max(1.0, abs(var.low), abs(var.high))
            if not math.isfinite(x):
                reasons.append(f"{var.name} = {x} is not finite")
            elif x < var.low - slack or x > var.high + slack:
                reasons.append(
                    f"{var.name} = {x:g} {var.unit} outside [{var.low:g}, {var.high:g}]"
                )
        return reasons

    def sample(
        self, n: int, seed: int, method: Literal["sobol", "lhs", "random"] = "sobol"
    ) -> pd.DataFrame:
        """``n`` points of a seeded space-filling design over the box.

        Sobol points are scrambled; ``n`` need not be a power of two (the balance
        of the sequence is then slightly worse, which SciPy warns about and we
        accept for the sake of an exact case count).
        """
        from scipy.stats import qmc

        if n < 1:
            raise ValueError(f"n = {n}; expected at least 1 sample")
        d = len(self.variables)
        if d == 0:
            return pd.DataFrame(index=range(n))
        if method == "sobol":
            unit = _sobol(d, n, seed)
        elif method == "lhs":
            unit = qmc.LatinHypercube(d=d, seed=np.random.default_rng(seed)).random(n)
        elif method == "random":
            unit = np.random.default_rng(seed).random((n, d))
        else:
            raise ValueError(f"method {method!r}; expected 'sobol', 'lhs' or 'random'")
        low, high = self.bounds()
        return pd.DataFrame(low + unit * (high - low), columns=self.names)


def _sobol(d: int, n: int, seed: int) -> np.ndarray:
    import warnings

    from scipy.stats import qmc

    engine = qmc.Sobol(d=d, scramble=True, seed=np.random.default_rng(seed))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*balance properties.*")
        return engine.random(n)


@dataclass(frozen=True)
class Case:
    """One (parameters, device settings, scenario) triple."""

    params: BaseModel
    device: BaseModel
    scenario: BaseModel


@dataclass
class TimeSeriesResult:
    """A trajectory: one row per output time, the time column first.

    Attributes:
        table: columns named with their units (``time_min``, ``..._mg_dl``).
        summary: scalar outcomes, names with units (``time_in_range_pct``).
    """

    table: pd.DataFrame
    summary: dict[str, float] = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Write the table as CSV, atomically."""
        path = Path(path)
        with atomic_path(path) as tmp:
            self.table.to_csv(tmp, index=False, float_format="%.10g")
        return path


@dataclass
class FieldResult:
    """Fields on a grid: named arrays with units in their names, saved as ``.npz``."""

    arrays: dict[str, np.ndarray]
    summary: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Write all arrays to one ``.npz`` file, atomically."""
        path = Path(path)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **self.arrays)
        return path


@dataclass
class BatchResult:
    """Many cases on one grid, for datasets.

    Attributes:
        coords: the shared coordinates, e.g. ``{"time_min": (T,)}``.
        outputs: one array per output quantity, shape ``(n_cases, *grid)``.
        summary: per-case scalar outcomes, one row per case.
    """

    coords: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    summary: pd.DataFrame | None = None


@dataclass(frozen=True)
class CheckResult:
    """One verification check of a solver: what was measured against what."""

    name: str
    passed: bool
    measured: float
    tolerance: float
    detail: str = ""


@dataclass(frozen=True)
class TwinSpec:
    """Everything the platform needs to know about a twin.

    Attributes:
        name: registry key, lower case (``"diabetes"``).
        title: one line for humans.
        output_kind: ``"timeseries"`` (CSV, one row per output time) or ``"field"``
            (``.npz`` arrays on a grid).
        parameters, device, scenario: boundary models of a case.
        outputs: the output quantities with units.
        input_domain: the default domain that datasets sample.
        solver_version: bumped whenever the solver's numbers may change.
        simulate: the reference solver, ``simulate(case) -> result``.
        simulate_batch: ``simulate_batch(cases) -> BatchResult``, vectorised over
            cases; ``None`` when the twin has no batched path.
        verification: ``verification() -> list[CheckResult]``.
        cases_from_design: ``cases_from_design(design, options, seed) -> list[Case]``
            turns rows of a domain design into cases, for dataset generation.
        sample_cohort: ``sample_cohort(cohort, n, seed) -> list[parameters]``,
            reproducible by seed.
        exogenous_inputs: ``exogenous_inputs(cases, n, every=1) -> {name: (cases,
            n)}``, the exogenous signals of open-loop cases (the same quantities, on
            the same grid, as the batch outputs report), computed without solving:
            what a surrogate needs as its controls. With ``every = m`` each value is
            the mean over ``m`` consecutive grid points, ``n`` such means.
        outcomes: ``outcomes(outputs, dt) -> {name: (n,)}``, the scalar outcomes of
            output trajectories ``{name: (n, T)}`` on a uniform grid of spacing
            ``dt``; ``outcome_units`` gives their units.
        cohorts: names of the virtual populations the twin ships.
    """

    name: str
    title: str
    output_kind: Literal["timeseries", "field"]
    parameters: type[BaseModel]
    device: type[BaseModel]
    scenario: type[BaseModel]
    outputs: tuple[Quantity, ...]
    input_domain: InputDomain
    solver_version: str
    simulate: Callable[[Case], TimeSeriesResult | FieldResult]
    simulate_batch: Callable[[Sequence[Case]], BatchResult] | None = None
    verification: Callable[[], list[CheckResult]] | None = None
    cases_from_design: Callable[..., list[Case]] | None = None
    sample_cohort: Callable[[str, int, int], list[BaseModel]] | None = None
    exogenous_inputs: Callable[..., dict[str, np.ndarray]] | None = None
    outcomes: (
        Callable[[Mapping[str, np.ndarray], float], dict[str, np.ndarray]] | None
    ) = None
    outcome_units: Mapping[str, str] = field(default_factory=dict)
    cohorts: tuple[str, ...] = ()
    output_suffix: str = ""

    @property
    def suffix(self) -> str:
        """File suffix of :meth:`simulate`'s output."""
        return self.output_suffix or (
            ".csv" if self.output_kind == "timeseries" else ".npz"
        )

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description for ``medtwin twins`` and ``GET /v1/twins``."""
        return {
            "name": self.name,
            "title": self.title,
            "output_kind": self.output_kind,
            "solver_version": self.solver_version,
            "parameters": self.parameters.__name__,
            "device": self.device.__name__,
            "scenario": self.scenario.__name__,
            "outputs": [q.as_dict() for q in self.outputs],
            "input_domain": self.input_domain.model_dump(),
            "cohorts": list(self.cohorts),
            "batched": self.simulate_batch is not None,
        }


def field_unit(model: type[BaseModel], name: str) -> str:
    """The unit of a model field: ``json_schema_extra["unit"]``, else a trailing
    ``[unit]`` in its description, else the empty string."""
    info = model.model_fields.get(name)
    if info is None:
        return ""
    extra = info.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("unit"), str):
        return extra["unit"]
    text = (info.description or "").rstrip()
    if text.endswith("]") and "[" in text:
        return text[text.rindex("[") + 1 : -1]
    return ""


def shared_scenario(cases: Sequence[Case], fields: Sequence[str]) -> BaseModel:
    """Case 0's scenario, once every case is known to agree with it on ``fields``.

    A batched solver steps all its cases on one grid; the fields that set the grid
    (duration, step, output interval) must then be the same in every case.

    Raises:
        ValueError: no cases, or a case differs, naming the case and the fields.
    """
    if not cases:
        raise ValueError("no cases given; expected at least one")
    first = cases[0].scenario
    for i, case in enumerate(cases):
        differ = [f for f in fields if getattr(case.scenario, f) != getattr(first, f)]
        if differ:
            got = {f: getattr(case.scenario, f) for f in differ}
            want = {f: getattr(first, f) for f in differ}
            raise ValueError(
                f"case {i} has {got}; every case in a batch must share the grid "
                f"fields {list(fields)}, expected {want} as in case 0"
            )
    return first
