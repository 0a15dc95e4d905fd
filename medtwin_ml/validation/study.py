"""The surrogate-versus-solver study: fresh cases, both models, errors and verdicts.

The steps, each a function below:

1. :func:`draw_cases`: fresh patients and design rows from the training domain, by a
   seed the training never used, plus cases at the corners of the design box;
2. :func:`solve_reference`: the full solver on every case, sampled on the
   surrogate's output grid;
3. a predictor (any callable ``(cases, n_steps) -> y``; a bundle's
   :class:`~medtwin_ml.export.runtime.SurrogateRunner` in practice) on the same cases;
4. :func:`run_study`: errors on trajectories and on the twin's outcomes, error-grid
   zones, distance from the training data, interval coverage, and a pass or fail per
   acceptance criterion of the context of use.

Every array is ``(cases, time, outputs)`` with time on the surrogate's grid
``t_k = k * step``, ``k = 0 .. K``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from medtwin_ml.errors import ConfigError
from medtwin_ml.twin import Case, InputDomain, TwinSpec
from medtwin_ml.validation.context import ContextOfUse
from medtwin_ml.validation.domain import ValidityDetector
from medtwin_ml.validation.metrics import (
    bias,
    clarke_zone_pct,
    mae,
    mard_pct,
    max_abs_error,
    rmse,
)
from medtwin_ml.validation.uncertainty import intervals

__all__ = [
    "CORNER",
    "STUDY",
    "Predictor",
    "StudyResult",
    "corner_design",
    "draw_cases",
    "known_metrics",
    "run_study",
    "solve_reference",
]

logger = logging.getLogger(__name__)

STUDY = "study"
CORNER = "corner"

Predictor = Callable[[Sequence[Case], int], np.ndarray]
"""``predict(cases, n_steps) -> y (cases, n_steps + 1, n_outputs)``."""

_TRAJECTORY_METRICS = ("mae", "rmse", "bias", "max_abs_error", "mard_pct")
_OUTCOME_METRICS = ("mae", "rmse", "bias", "max_abs_error")
_CLARKE = ("clarke_a_pct", "clarke_b_pct", "clarke_c_pct", "clarke_d_pct")
_CLARKE += ("clarke_e_pct", "clarke_ab_pct")


# 1. Cases ---------------------------------------------------------------------------


def corner_design(domain: InputDomain, n: int, seed: int) -> pd.DataFrame:
    """``n`` distinct corners of the box: all-low, all-high, then seeded others.

    When the box has fewer than ``n`` corners, all of them.
    """
    d = len(domain.variables)
    low, high = domain.bounds()
    n = min(n, 2**d) if d < 63 else n
    if n < 1 or d == 0:
        return pd.DataFrame(columns=domain.names, dtype=float)
    rng = np.random.default_rng(seed)
    chosen: list[tuple[int, ...]] = [(0,) * d, (1,) * d][:n]
    seen = set(chosen)
    while len(chosen) < n:
        bits = tuple(int(b) for b in rng.integers(0, 2, size=d))
        if bits not in seen:
            seen.add(bits)
            chosen.append(bits)
    picks = np.array(chosen, dtype=bool)
    return pd.DataFrame(np.where(picks, high, low), columns=domain.names)


def draw_cases(
    spec: TwinSpec,
    domain: InputDomain,
    cohort: str,
    n: int,
    seed: int,
    *,
    n_corners: int = 0,
    options: Mapping[str, Any] | None = None,
) -> tuple[list[Case], np.ndarray, pd.DataFrame]:
    """Fresh cases over ``domain``: ``n`` by a Sobol design, then the corners.

    Each case gets its own patient from ``spec.sample_cohort(cohort, ., seed)``.

    Returns:
        The cases, their kind (``"study"`` or ``"corner"``, shape ``(n_cases,)``)
        and the design rows they came from.
    """
    if spec.sample_cohort is None or spec.cases_from_design is None:
        raise ValueError(
            f"twin {spec.name} lacks sample_cohort or cases_from_design; a study "
            "draws its cases with both"
        )
    if n < 1:
        raise ValueError(f"n = {n}; expected at least one study case")
    design = domain.sample(n, seed, "sobol")
    corners = corner_design(domain, n_corners, seed)
    rows = pd.concat([design, corners], ignore_index=True)
    patients = list(spec.sample_cohort(cohort, len(rows), seed))
    cases = list(spec.cases_from_design(rows, patients, dict(options or {})))
    kind = np.array([STUDY] * len(design) + [CORNER] * len(corners))
    return cases, kind, rows


# 2. The full solver ------------------------------------------------------------------


def solve_reference(
    spec: TwinSpec,
    cases: Sequence[Case],
    output_names: Sequence[str],
    step: float,
    n_steps: int,
    *,
    chunk: int = 64,
) -> np.ndarray:
    """The full solver's outputs on the surrogate's grid, ``(n, n_steps + 1, n_out)``.

    Cases are solved ``chunk`` at a time with ``spec.simulate_batch``; its grid must
    be uniform with ``step`` a whole multiple of its spacing.
    """
    if spec.simulate_batch is None:
        raise ValueError(f"twin {spec.name} has no batched solver to validate against")
    parts = []
    for start in range(0, len(cases), chunk):
        batch = spec.simulate_batch(list(cases[start : start + chunk]))
        ((_, t),) = batch.coords.items()
        dt = float(t[1] - t[0])
        ratio = step / dt
        if abs(ratio - round(ratio)) > 1e-9 or ratio < 1:
            raise ValueError(
                f"surrogate step {step:g} is not a whole multiple of the solver's "
                f"output spacing {dt:g}"
            )
        ratio = round(ratio)
        y = np.stack([batch.outputs[name] for name in output_names], axis=-1)
        y = y[:, ::ratio][:, : n_steps + 1]
        if y.shape[1] != n_steps + 1:
            raise ValueError(
                f"the solver returned {y.shape[1]} points on the surrogate grid; "
                f"expected {n_steps + 1}"
            )
        parts.append(y)
        logger.info("solved %d of %d cases", min(start + chunk, len(cases)), len(cases))
    return np.concatenate(parts).astype(float)


# 3-4. Errors and verdicts -------------------------------------------------------------


@dataclass
class StudyResult:
    """Everything a report needs from one study.

    Attributes:
        times: output times, ``(K + 1,)``.
        names, units: the outputs, in the order of the last axis.
        kind: ``"study"`` or ``"corner"`` per case, ``(n,)``.
        pred, ref: surrogate and solver outputs, ``(n, K + 1, n_out)``.
        case_rmse: RMSE of each case and output, ``(n, n_out)``.
        outcomes_pred, outcomes_ref: the twin's outcomes, ``{name: (n,)}``.
        distance: distance from the training data, ``(n,)``, NaN without a detector.
        in_domain: ``(n,)``; reasons: why each case is out of domain.
        lower, upper: calibrated interval bounds like ``pred``, or ``None``.
        metrics: flat ``{name: value}``, see
            :class:`~medtwin_ml.validation.context.AcceptanceCriterion`.
        criteria: one row per applicable criterion: name, metric, value, bound,
            passed, note.
        time_unit: the unit of ``times`` (``"min"``, say); empty if not known.
    """

    times: np.ndarray
    names: list[str]
    units: list[str]
    kind: np.ndarray
    pred: np.ndarray
    ref: np.ndarray
    case_rmse: np.ndarray
    outcomes_pred: dict[str, np.ndarray]
    outcomes_ref: dict[str, np.ndarray]
    distance: np.ndarray
    in_domain: np.ndarray
    reasons: list[list[str]]
    lower: np.ndarray | None
    upper: np.ndarray | None
    metrics: dict[str, float]
    criteria: list[dict[str, Any]] = field(default_factory=list)
    time_unit: str = ""

    @property
    def passed(self) -> bool:
        return all(c["passed"] for c in self.criteria)


def known_metrics(
    output_names: Sequence[str],
    outcome_names: Sequence[str],
    error_grid: Sequence[str],
    *,
    corners: bool = True,
) -> list[str]:
    """Every metric name a study can produce for these outputs and outcomes."""
    names = ["n_cases", "in_domain_pct", "decision_agreement_pct"]
    for out in output_names:
        names += [f"{out}.{m}" for m in (*_TRAJECTORY_METRICS, "coverage_pct")]
        if out in error_grid:
            names += [f"{out}.{m}" for m in _CLARKE]
    for q in outcome_names:
        names += [f"{q}.{m}" for m in _OUTCOME_METRICS]
    names = [*names, *(f"corners.{n}" for n in names)] if corners else names
    return [*names, "solver_checks_failed"]


def check_context(
    context: ContextOfUse,
    twin: str,
    output_names: Sequence[str],
    outcome_names: Sequence[str],
    source: str = "context of use",
) -> None:
    """Refuse a context that cannot be judged on this bundle, before any solving."""
    problems: list[tuple[str, Any, str]] = []
    if context.twin != twin:
        problems.append(("twin", context.twin, f"the bundle's twin {twin!r}"))
    if context.quantity_of_interest.name not in outcome_names:
        problems.append(
            (
                "quantity_of_interest.name",
                context.quantity_of_interest.name,
                f"an outcome of twin {twin}: {sorted(outcome_names)}",
            )
        )
    for i, name in enumerate(context.error_grid):
        if name not in output_names:
            problems.append(
                (
                    f"error_grid.{i}",
                    name,
                    f"an output of the bundle {list(output_names)}",
                )
            )
    known = set(known_metrics(output_names, outcome_names, context.error_grid))
    for i, crit in enumerate(context.acceptance_criteria):
        if crit.metric not in known:
            problems.append(
                (
                    f"acceptance_criteria.{i}.metric",
                    crit.metric,
                    "a study metric such as "
                    f"'{output_names[0]}.mae' or '{context.quantity_of_interest.name}"
                    ".mae' (see AcceptanceCriterion)",
                )
            )
    if problems:
        raise ConfigError(source, problems)


def _group_metrics(
    pred: np.ndarray,
    ref: np.ndarray,
    names: Sequence[str],
    outcomes_pred: Mapping[str, np.ndarray],
    outcomes_ref: Mapping[str, np.ndarray],
    context: ContextOfUse,
    in_domain: np.ndarray,
    lower: np.ndarray | None,
    upper: np.ndarray | None,
) -> dict[str, float]:
    m: dict[str, float] = {
        "n_cases": float(len(pred)),
        "in_domain_pct": float(100.0 * np.mean(in_domain)),
    }
    for k, out in enumerate(names):
        p, r = pred[..., k], ref[..., k]
        m[f"{out}.mae"] = mae(p, r)
        m[f"{out}.rmse"] = rmse(p, r)
        m[f"{out}.bias"] = bias(p, r)
        m[f"{out}.max_abs_error"] = max_abs_error(p, r)
        if np.all(r > 0):
            m[f"{out}.mard_pct"] = mard_pct(p, r)
        if lower is not None and upper is not None:
            inside = (r >= lower[..., k]) & (r <= upper[..., k])
            m[f"{out}.coverage_pct"] = float(100.0 * inside.mean())
        if out in context.error_grid:
            zones = clarke_zone_pct(p, r)
            for zone, pct in zones.items():
                m[f"{out}.clarke_{zone.lower()}_pct"] = pct
            m[f"{out}.clarke_ab_pct"] = zones["A"] + zones["B"]
    for q in outcomes_ref:
        p, r = outcomes_pred[q], outcomes_ref[q]
        m[f"{q}.mae"] = mae(p, r)
        m[f"{q}.rmse"] = rmse(p, r)
        m[f"{q}.bias"] = bias(p, r)
        m[f"{q}.max_abs_error"] = max_abs_error(p, r)
    qoi = context.quantity_of_interest.name
    if qoi in outcomes_ref:
        thr = context.decision_threshold.value
        same = (outcomes_pred[qoi] >= thr) == (outcomes_ref[qoi] >= thr)
        m["decision_agreement_pct"] = float(100.0 * np.mean(same))
    return m


def _judge(context: ContextOfUse, metrics: Mapping[str, float]) -> list[dict[str, Any]]:
    rows = []
    for crit in context.applicable_criteria():
        value = metrics.get(crit.metric, float("nan"))
        note = "" if crit.metric in metrics else "not computed for these cases"
        rows.append(
            {
                "name": crit.name,
                "metric": crit.metric,
                "value": float(value),
                "bound": crit.bound_text,
                "at_most": crit.at_most,
                "at_least": crit.at_least,
                "unit": crit.unit,
                "rationale": crit.rationale,
                "passed": crit.judge(float(value)),
                "note": note,
            }
        )
    return rows


def run_study(
    pred: np.ndarray,
    ref: np.ndarray,
    *,
    names: Sequence[str],
    units: Sequence[str],
    step: float,
    context: ContextOfUse,
    kind: np.ndarray | None = None,
    outcomes: Callable[[Mapping[str, np.ndarray], float], Mapping[str, np.ndarray]]
    | None = None,
    features: np.ndarray | None = None,
    detector: ValidityDetector | None = None,
    uncertainty: Mapping[str, Any] | None = None,
    solver_checks_failed: int | None = None,
    time_unit: str = "",
) -> StudyResult:
    """Score surrogate outputs against the solver's and judge the criteria.

    Args:
        pred, ref: surrogate and solver outputs, ``(n, K + 1, n_out)``.
        names, units: the ``n_out`` outputs.
        step: output spacing, in the time unit of the outcomes.
        context: the context of use whose applicable criteria are judged.
        kind: ``"study"`` or ``"corner"`` per case (default all study); criteria
            read the study cases' metrics, or the corners' with a ``corners.``
            prefix.
        outcomes: the twin's ``outcomes(outputs {name: (n, K + 1)}, dt)``.
        features, detector: case features ``(n, d)`` and the validity detector.
        uncertainty: a card's ``uncertainty`` (split conformal half-widths).
        solver_checks_failed: failed verification checks of the solver, if run.
        time_unit: the unit of ``step``, for the report's time axes.
    """
    pred = np.asarray(pred, dtype=float)
    ref = np.asarray(ref, dtype=float)
    if pred.shape != ref.shape or pred.ndim != 3 or pred.shape[2] != len(names):
        raise ValueError(
            f"pred {pred.shape} and ref {ref.shape}; expected equal shapes "
            f"(n, K + 1, {len(names)})"
        )
    n = len(pred)
    kind = np.full(n, STUDY) if kind is None else np.asarray(kind)
    if kind.shape != (n,):
        raise ValueError(f"kind has shape {kind.shape}; expected ({n},)")

    case_rmse = np.sqrt(np.mean((pred - ref) ** 2, axis=1))
    outcomes_pred: dict[str, np.ndarray] = {}
    outcomes_ref: dict[str, np.ndarray] = {}
    if outcomes is not None:
        outcomes_pred = _outcomes(outcomes, pred, names, step)
        outcomes_ref = _outcomes(outcomes, ref, names, step)

    distance = np.full(n, np.nan)
    in_domain = np.ones(n, dtype=bool)
    reasons: list[list[str]] = [[] for _ in range(n)]
    if detector is not None and features is not None:
        distance = detector.score(features)
        in_domain, reasons = detector.check(features)

    lower = upper = None
    if uncertainty:
        lower, upper = intervals(uncertainty, pred, names)

    metrics: dict[str, float] = {}
    for group, prefix in ((STUDY, ""), (CORNER, "corners.")):
        sel = kind == group
        if not sel.any():
            continue
        part = _group_metrics(
            pred[sel],
            ref[sel],
            names,
            {q: v[sel] for q, v in outcomes_pred.items()},
            {q: v[sel] for q, v in outcomes_ref.items()},
            context,
            in_domain[sel],
            None if lower is None else lower[sel],
            None if upper is None else upper[sel],
        )
        metrics.update({prefix + k: v for k, v in part.items()})
    if solver_checks_failed is not None:
        metrics["solver_checks_failed"] = float(solver_checks_failed)

    return StudyResult(
        times=np.arange(pred.shape[1]) * step,
        names=list(names),
        units=list(units),
        kind=kind,
        pred=pred,
        ref=ref,
        case_rmse=case_rmse,
        outcomes_pred=outcomes_pred,
        outcomes_ref=outcomes_ref,
        distance=distance,
        in_domain=in_domain,
        reasons=reasons,
        lower=lower,
        upper=upper,
        metrics=metrics,
        criteria=_judge(context, metrics),
        time_unit=time_unit,
    )


def _outcomes(
    outcomes: Callable[[Mapping[str, np.ndarray], float], Mapping[str, np.ndarray]],
    y: np.ndarray,
    names: Sequence[str],
    step: float,
) -> dict[str, np.ndarray]:
    values = outcomes({name: y[..., k] for k, name in enumerate(names)}, step)
    return {q: np.asarray(v, dtype=float).reshape(len(y)) for q, v in values.items()}
