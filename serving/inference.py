"""What the endpoints compute: from a validated request to a JSON-ready answer.

Everything here is NumPy and onnxruntime. A request's cases become ``p (n, n_params)``
and ``u (n, n_steps, n_controls)`` through :class:`SurrogateRunner`, and the whole batch
(or cohort) goes through ONE onnxruntime call. Bad input raises :class:`ConfigError`,
which the app turns into a 422.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from threading import Lock
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from medtwin_ml.config import validate_input
from medtwin_ml.errors import ConfigError, MedtwinError
from medtwin_ml.twin import Case, TwinSpec
from serving.schemas import PERCENTILES, PredictRequest
from serving.store import LoadedModel

__all__ = ["Prepared", "compare", "describe_model", "finish", "predict", "prepare"]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------
# Describing a model


def _time(model: LoadedModel) -> dict[str, Any]:
    integ = model.runner.card.integration
    return {"name": integ.time_name, "unit": integ.time_unit, "step": integ.step}


def describe_model(model: LoadedModel) -> dict[str, Any]:
    """The entry of one model in ``GET /v1/models``."""
    card = model.runner.card
    twin = model.runner.twin
    unc = _uncertainty_meta(card.uncertainty)
    return {
        "name": card.name,
        "version": card.version,
        "twin": card.twin,
        "kind": card.kind,
        "time": _time(model),
        "parameters": [s.model_dump() for s in card.parameters],
        "controls": [s.model_dump() for s in card.controls],
        "outputs": [s.model_dump() for s in card.outputs],
        "outcomes": [
            {"name": k, "unit": v, "description": ""}
            for k, v in twin.outcome_units.items()
        ],
        "input_domain": card.input_domain,
        "validation": card.validation,
        "uncertainty": unc,
        "validity_detector": model.detector is not None,
        "cohorts": list(twin.cohorts),
        "model_sha256": card.model_sha256,
    }


# ---------------------------------------------------------------------------
# From request to cases


def duration_field(model: LoadedModel) -> str:
    # time_min -> duration_min: the scenario field that sets a case's length.
    name = model.runner.card.integration.time_name
    return "duration" + name[len("time") :] if name.startswith("time") else ""


def _explicit_cases(
    model: LoadedModel, req: PredictRequest
) -> tuple[list[Case], float]:
    twin = model.runner.twin
    cases = []
    for i, c in enumerate(req.cases or []):
        cases.append(
            Case(
                params=validate_input(
                    c.parameters, twin.parameters, f"cases.{i}.parameters"
                ),
                device=validate_input(c.device, twin.device, f"cases.{i}.device"),
                scenario=validate_input(
                    c.scenario, twin.scenario, f"cases.{i}.scenario"
                ),
            )
        )
    field = duration_field(model)
    durations = sorted({float(getattr(c.scenario, field, math.nan)) for c in cases})
    if req.horizon_min is not None:
        too_long = [d for d in durations if d < req.horizon_min]
        if too_long:
            raise ConfigError(
                "request body",
                [
                    (
                        "horizon_min",
                        req.horizon_min,
                        f"at most the scenario's {field} ({too_long[0]:g})",
                    )
                ],
            )
        return cases, float(req.horizon_min)
    if len(durations) != 1 or not math.isfinite(durations[0]):
        raise ConfigError(
            "request body",
            [
                (
                    f"cases.*.scenario.{field}",
                    durations,
                    "one duration shared by the cases, or horizon_min",
                )
            ],
        )
    return cases, durations[0]


# Cohort draws are deterministic in (twin, cohort, n, seed), so recent ones, and
# their parameter arrays, are kept.
_COHORTS: OrderedDict[tuple, Any] = OrderedDict()
_COHORTS_LOCK = Lock()
_COHORTS_KEPT = 16


def _remembered(key: tuple, make: Any) -> Any:
    with _COHORTS_LOCK:
        if key in _COHORTS:
            _COHORTS.move_to_end(key)
            return _COHORTS[key]
    value = make()
    with _COHORTS_LOCK:
        _COHORTS[key] = value
        while len(_COHORTS) > _COHORTS_KEPT:
            _COHORTS.popitem(last=False)
    return value


def _patients(twin: TwinSpec, name: str, n: int, seed: int) -> list[BaseModel]:
    return _remembered(
        (twin.name, name, n, seed), lambda: twin.sample_cohort(name, n, seed)
    )


def _cohort_p(
    model: LoadedModel, query: Any, cases: Sequence[Case]
) -> np.ndarray | None:
    """``p`` of a cohort draw for this model (its parameters, its order), when the
    cases carry the draw's patients unchanged; else ``None``."""
    patients = _patients(model.runner.twin, query.name, query.n, query.seed)
    if any(c.params is not q for c, q in zip(cases, patients, strict=True)):
        return None
    key = ("p", model.runner.card.model_sha256, query.name, query.n, query.seed)
    p = _remembered(key, lambda: model.runner.parameters(cases))
    p.flags.writeable = False
    return p


def _design_row(model: LoadedModel, design: dict[str, float]) -> dict[str, float]:
    domain = model.runner.twin.input_domain
    unknown = sorted(set(design) - set(domain.names))
    if unknown:
        raise ConfigError(
            "request body",
            [(f"design.{k}", design[k], f"one of {domain.names}") for k in unknown],
        )
    row = {v.name: 0.5 * (v.low + v.high) for v in domain.variables}
    row.update({k: float(v) for k, v in design.items()})
    return row


def _cohort_cases(
    model: LoadedModel, req: PredictRequest
) -> tuple[list[Case], float, dict[str, float], list[str]]:
    twin = model.runner.twin
    query = req.cohort
    if query is None:
        raise ValueError("a cohort query without a cohort")
    if twin.sample_cohort is None or twin.cases_from_design is None:
        raise ConfigError(
            "request body",
            [("cohort", query.name, f"a twin with cohorts (not {twin.name})")],
        )
    if query.name not in twin.cohorts:
        raise ConfigError(
            "request body",
            [("cohort.name", query.name, f"one of {list(twin.cohorts)}")],
        )
    row = _design_row(model, req.design)
    patients = _patients(twin, query.name, query.n, query.seed)
    design = pd.DataFrame([row] * query.n)
    try:
        cases = twin.cases_from_design(design, patients, dict(req.options))
    except (MedtwinError, ValueError) as exc:
        raise _as_config_error(exc, "options") from None
    field = duration_field(model)
    horizon = float(getattr(cases[0].scenario, field, math.nan))
    if not math.isfinite(horizon):
        raise ConfigError(
            "request body", [(f"options.{field}", "(absent)", "a case length")]
        )
    return cases, horizon, row, twin.input_domain.outside(row)


def _as_config_error(exc: Exception, key: str) -> ConfigError:
    if isinstance(exc, ConfigError):
        return exc
    # pydantic ValidationError is a ValueError; keep only its first line per error.
    text = str(exc).splitlines()
    return ConfigError("request body", [(key, "(see message)", " ".join(text[:3]))])


# ---------------------------------------------------------------------------
# Running the surrogate


@dataclass
class Prepared:
    """A predict request turned into the model's arrays, before the model runs."""

    cases: list[Case]
    horizon: float
    times: np.ndarray
    p: np.ndarray
    u: np.ndarray
    n_steps: int
    row: dict[str, float] = field(default_factory=dict)
    design_reasons: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.cases)


def _arrays(
    model: LoadedModel,
    cases: Sequence[Case],
    horizon: float,
    p: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Times ``(K+1,)``, ``p`` (given, or from the cases), ``u`` and ``K``."""
    runner = model.runner
    try:
        n_steps = runner.n_steps_for(horizon)
        if p is None:
            p = runner.parameters(cases)
        u = runner.controls(cases, n_steps)
    except (MedtwinError, ValueError) as exc:
        # The twin refuses cases it cannot turn into controls (a closed loop, say).
        raise _as_config_error(exc, "cases") from None
    return np.arange(n_steps + 1) * runner.step, p, u, n_steps


def prepare(model: LoadedModel, req: PredictRequest) -> Prepared:
    """Validate a predict request and build its ``p`` and ``u``.

    Raises:
        ConfigError: the twin refuses the input (the app answers 422).
    """
    row: dict[str, float] = {}
    design_reasons: list[str] = []
    p = None
    if req.cohort is not None:
        cases, horizon, row, design_reasons = _cohort_cases(model, req)
        p = _cohort_p(model, req.cohort, cases)
    else:
        cases, horizon = _explicit_cases(model, req)
    times, p, u, n_steps = _arrays(model, cases, horizon, p)
    return Prepared(cases, horizon, times, p, u, n_steps, row, design_reasons)


def _domain(
    model: LoadedModel,
    cases: Sequence[Case],
    p: np.ndarray,
    u: np.ndarray,
    n_steps: int,
    extra: Sequence[str] = (),
) -> list[list[str]]:
    reasons = model.runner.outside_bounds(cases, n_steps, p=p)
    if extra:
        reasons = [[*extra, *r] for r in reasons]
    if model.detector is not None:
        features = model.case_features(p, u, model.runner.step)
        ok, why = model.detector.check(features)
        for i in np.flatnonzero(~np.asarray(ok, dtype=bool)):
            reasons[i].extend(why[i] or ["far from the training data"])
    return reasons


def _uncertainty_meta(unc: dict[str, Any]) -> dict[str, Any] | None:
    if not unc or "half_width" not in unc:
        return None
    return {k: v for k, v in unc.items() if k != "half_width"} | {
        "outputs": sorted(unc["half_width"])
    }


def _half_widths(model: LoadedModel, n_points: int) -> dict[str, np.ndarray]:
    """Half-width per output over ``n_points`` output times; a per-step list shorter
    than the horizon is continued with its last value. Kept per model and length."""
    cached = model.cache.get(("half_widths", n_points))
    if cached is not None:
        return cached
    unc = model.runner.card.uncertainty
    out = {}
    for name, hw in (unc.get("half_width") or {}).items():
        hw = np.atleast_1d(np.asarray(hw, dtype=float))
        if hw.size == 1:
            out[name] = np.full(n_points, float(hw[0]))
        else:
            out[name] = np.concatenate(
                [hw[:n_points], np.full(max(0, n_points - hw.size), hw[-1])]
            )
    for values in out.values():
        values.flags.writeable = False
    if len(model.cache) < 64:
        model.cache[("half_widths", n_points)] = out
    return out


def _values(x: np.ndarray) -> np.ndarray:
    """An array for the JSON writer, which writes non-finite values (a diverging
    model) as null."""
    return np.ascontiguousarray(x)


def _scalar(v: float) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _trajectories(
    model: LoadedModel, y: np.ndarray, hw: dict[str, np.ndarray]
) -> dict[str, Any]:
    out = {}
    for k, s in enumerate(model.runner.card.outputs):
        entry: dict[str, Any] = {"unit": s.unit, "values": _values(y[:, k])}
        if s.name in hw:
            entry["lower"] = _values(y[:, k] - hw[s.name])
            entry["upper"] = _values(y[:, k] + hw[s.name])
        out[s.name] = entry
    return out


def _outcomes(model: LoadedModel, y: np.ndarray) -> dict[str, np.ndarray]:
    try:
        return model.runner.outcomes(y)
    except ValueError:
        # The twin's metrics refuse non-finite trajectories: report no outcome.
        logger.warning("model %s: outcomes of non-finite output skipped", model.name)
        return {}


def _header(model: LoadedModel, times: np.ndarray) -> dict[str, Any]:
    card = model.runner.card
    return {
        "model": card.name,
        "version": card.version,
        "twin": card.twin,
        "time": {**_time(model), "values": times.tolist()},
        "outcome_units": dict(model.runner.twin.outcome_units),
        "uncertainty": _uncertainty_meta(card.uncertainty),
    }


# ---------------------------------------------------------------------------
# The endpoints


def predict(model: LoadedModel, req: PredictRequest) -> tuple[dict[str, Any], int]:
    """Answer ``POST /v1/models/{name}/predict`` in one go, running the model in the
    calling thread; returns the body and case count."""
    prep = prepare(model, req)
    return finish(model, req, prep, model.runner.run(prep.p, prep.u)), prep.n


def finish(
    model: LoadedModel, req: PredictRequest, prep: Prepared, y: np.ndarray
) -> dict[str, Any]:
    """The answer to a predict request from the model's output ``y``."""
    if req.cohort is not None:
        return _predict_cohort(model, req, prep, y)
    reasons = _domain(model, prep.cases, prep.p, prep.u, prep.n_steps)
    outcomes = _outcomes(model, y)
    hw = _half_widths(model, prep.n_steps + 1) if req.include_trajectories else {}
    out = []
    for i in range(prep.n):
        entry: dict[str, Any] = {
            "index": i,
            "in_domain": not reasons[i],
            "reasons": reasons[i],
            "outcomes": {k: _scalar(v[i]) for k, v in outcomes.items()},
        }
        if req.include_trajectories:
            entry["trajectories"] = _trajectories(model, y[i], hw)
        out.append(entry)
    return {**_header(model, prep.times), "cases": out}


def _predict_cohort(
    model: LoadedModel, req: PredictRequest, prep: Prepared, y: np.ndarray
) -> dict[str, Any]:
    cases, times, row = prep.cases, prep.times, prep.row
    reasons = _domain(
        model, cases, prep.p, prep.u, prep.n_steps, extra=prep.design_reasons
    )
    outcomes = _outcomes(model, y)
    units = model.runner.twin.outcome_units
    distribution = {}
    for name, values in outcomes.items():
        finite = values[np.isfinite(values)]
        q = np.percentile(finite, PERCENTILES) if finite.size else [math.nan] * 5
        distribution[name] = {
            "unit": units.get(name, ""),
            **{f"p{k}": _scalar(v) for k, v in zip(PERCENTILES, q, strict=True)},
            "mean": _scalar(finite.mean()) if finite.size else None,
        }
    bands = {}
    for k, s in enumerate(model.runner.card.outputs):
        q = np.percentile(y[:, :, k], PERCENTILES, axis=0)
        bands[s.name] = {
            "unit": s.unit,
            **{f"p{pc}": _values(q[j]) for j, pc in enumerate(PERCENTILES)},
        }
    worst, rule = _worst(model, outcomes, req.worst_k)
    names = [getattr(c.params, "Name", None) for c in cases]
    out_idx = [i for i, r in enumerate(reasons) if r]
    cohort = {
        "name": req.cohort.name,
        "n": req.cohort.n,
        "seed": req.cohort.seed,
        "design": row,
        "options": dict(req.options),
        "outcomes": distribution,
        "trajectory_percentiles": bands,
        "worst_rule": rule,
        "worst": [
            {
                "index": i,
                "patient": names[i],
                "in_domain": not reasons[i],
                "reasons": reasons[i],
                "outcomes": {k: _scalar(v[i]) for k, v in outcomes.items()},
            }
            for i in worst
        ],
        "n_in_domain": len(cases) - len(out_idx),
        "out_of_domain_examples": [
            {"index": i, "reasons": reasons[i]} for i in out_idx[:10]
        ],
    }
    return {**_header(model, times), "cohort": cohort}


def _worst(
    model: LoadedModel, outcomes: dict[str, np.ndarray], k: int
) -> tuple[list[int], str]:
    """The ``k`` cases with the lowest value of the twin's first outcome."""
    if not outcomes:
        return [], "no outcomes: the twin declares none, or the output is not finite"
    first = next(iter(outcomes))
    values = np.where(np.isfinite(outcomes[first]), outcomes[first], -np.inf)
    order = np.argsort(values, kind="stable")[:k]
    return [int(i) for i in order], f"the {k} cases with the lowest {first}"


def compare(
    model: LoadedModel, req: PredictRequest, max_cases: int
) -> tuple[dict[str, Any], int]:
    """Answer ``POST /v1/models/{name}/compare``: surrogate and full solver."""
    n = req.cohort.n if req.cohort is not None else len(req.cases or [])
    if n > max_cases:
        raise ConfigError(
            "request body",
            [("cases", f"{n} cases", f"at most {max_cases} cases per comparison")],
        )
    t0 = time.perf_counter()
    prep = prepare(model, req)
    y = model.runner.run(prep.p, prep.u)
    surrogate_s = time.perf_counter() - t0
    cases, times = prep.cases, prep.times
    reasons = _domain(
        model, cases, prep.p, prep.u, prep.n_steps, extra=prep.design_reasons
    )

    twin = model.runner.twin
    t0 = time.perf_counter()
    names = [s.name for s in model.runner.card.outputs]
    time_name = model.runner.card.integration.time_name
    reference = _solve(twin, cases, time_name, names, times)
    solver_s = time.perf_counter() - t0

    units = {s.name: s.unit for s in model.runner.card.outputs}
    sur_out = _outcomes(model, y)
    ref_out = _outcomes(model, reference)
    errors = {}
    for k, name in enumerate(names):
        diff = y[:, :, k] - reference[:, :, k]
        errors[name] = {
            "rmse": _scalar(np.sqrt(np.mean(diff**2))),
            "max_abs": _scalar(np.max(np.abs(diff))),
            "mean": _scalar(np.mean(diff)),
        }
    for name in sur_out:
        if name in ref_out:
            diff = sur_out[name] - ref_out[name]
            errors[name] = {
                "rmse": _scalar(np.sqrt(np.mean(diff**2))),
                "max_abs": _scalar(np.max(np.abs(diff))),
                "mean": _scalar(np.mean(diff)),
            }
    per_case = []
    for i in range(len(cases)):
        per_case.append(
            {
                "index": i,
                "in_domain": not reasons[i],
                "reasons": reasons[i],
                "surrogate": {
                    n: {"unit": units[n], "values": _values(y[i, :, k])}
                    for k, n in enumerate(names)
                },
                "solver": {
                    n: {"unit": units[n], "values": _values(reference[i, :, k])}
                    for k, n in enumerate(names)
                },
                "outcomes": {
                    n: {
                        "surrogate": _scalar(sur_out[n][i]),
                        "solver": _scalar(ref_out[n][i]) if n in ref_out else None,
                    }
                    for n in sur_out
                },
                "max_abs_error": {
                    n: _scalar(np.max(np.abs(y[i, :, k] - reference[i, :, k])))
                    for k, n in enumerate(names)
                },
            }
        )
    body = {
        "model": model.name,
        "version": model.version,
        "twin": twin.name,
        "time": {**_time(model), "values": times.tolist()},
        "solver_seconds": solver_s,
        "surrogate_seconds": surrogate_s,
        "errors": errors,
        "cases": per_case,
    }
    return body, len(cases)


def _solve(
    twin: TwinSpec,
    cases: Sequence[Case],
    time_name: str,
    names: Sequence[str],
    times: np.ndarray,
) -> np.ndarray:
    """The full solver's outputs ``names`` at the surrogate's ``times``, shape
    ``(n, K+1, n_out)``, linearly interpolated from the solver's own grid."""
    try:
        if twin.simulate_batch is not None:
            batch = twin.simulate_batch(cases)
            t = np.asarray(batch.coords[time_name], dtype=float)
            series = {n: np.asarray(batch.outputs[n], dtype=float) for n in names}
        else:
            tables = [twin.simulate(c).table for c in cases]
            t = tables[0][time_name].to_numpy(float)
            series = {
                n: np.stack([tb[n].to_numpy(float) for tb in tables]) for n in names
            }
    except (MedtwinError, ValueError) as exc:
        raise _as_config_error(exc, "cases") from None
    out = np.empty((len(cases), times.size, len(names)))
    for k, n in enumerate(names):
        for i in range(len(cases)):
            out[i, :, k] = np.interp(times, t, series[n][i])
    return out
