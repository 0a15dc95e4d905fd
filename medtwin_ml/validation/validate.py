"""``medtwin validate``: a bundle's credibility evidence, from cases to report.

The steps, each a function below or in :mod:`~medtwin_ml.validation.study`:

1. read the bundle and the context of use, and refuse a context the bundle cannot
   be judged on, or a seed the training used;
2. draw fresh study cases and corner cases from the training domain (and, when the
   card lacks a validity detector or calibrated intervals, a calibration set by
   another seed);
3. run the full solver and the surrogate on every case;
4. fit what the card lacks (detector, conformal intervals) on the calibration set;
5. run the solver's own verification checks;
6. score and judge (:func:`~medtwin_ml.validation.study.run_study`), write
   ``report.html`` and ``report.json``;
7. write the metrics (and what was fitted) into the card, and log the report to the
   bundle's MLflow run when that run is known and reachable.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medtwin_ml._version import __version__
from medtwin_ml.config import load_config
from medtwin_ml.errors import ConfigError
from medtwin_ml.twin import Case, InputDomain
from medtwin_ml.validation.context import ContextOfUse
from medtwin_ml.validation.domain import ValidityDetector, case_features, feature_names
from medtwin_ml.validation.report import figures, report_data, write_report
from medtwin_ml.validation.study import (
    STUDY,
    Predictor,
    check_context,
    draw_cases,
    run_study,
    solve_reference,
)
from medtwin_ml.validation.uncertainty import coverage, fit_conformal, intervals

__all__ = [
    "CONTEXTS",
    "DEFAULT_SEED",
    "ValidationOutcome",
    "default_context",
    "log_to_mlflow",
    "validate_bundle",
]

logger = logging.getLogger(__name__)

CONTEXTS = Path(__file__).resolve().parents[2] / "configs" / "validation"
"""Default contexts of use, ``<twin>_context.yaml``, in the source tree."""

DEFAULT_SEED = 914_067_301
"""Seed of the study cases; the calibration set takes the next one."""

_RELIABILITY_LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


@dataclass
class ValidationOutcome:
    """What one validation produced."""

    passed: bool
    html: Path
    json: Path
    metrics: dict[str, float]
    criteria: list[dict[str, Any]]
    card_updated: bool
    mlflow_logged: bool


def default_context(twin: str) -> Path:
    """Path of the default context of use of ``twin``; ConfigError if none."""
    path = CONTEXTS / f"{twin}_context.yaml"
    if not path.is_file():
        raise ConfigError(
            "--context",
            [
                (
                    "context",
                    "(none given)",
                    f"a context file; twin {twin} has no default",
                )
            ],
        )
    return path


def _training_seeds(card, workspace) -> dict[str, int]:
    seeds: dict[str, int] = {}
    config = card.training.get("config") or {}
    if isinstance(config.get("seed"), int):
        seeds["training"] = config["seed"]
    name = card.training.get("dataset")
    if workspace is not None and name:
        try:
            from medtwin_ml.datasets.store import open_dataset

            manifest = open_dataset(workspace.dataset(name)).manifest
            seeds["dataset"] = int(manifest["seed"])
        except Exception as exc:  # any unreadable dataset only loses this check
            logger.info("dataset %s not readable for its seed: %s", name, exc)
    return seeds


def _check_seed(seed: int, used: dict[str, int]) -> None:
    clash = {k: v for k, v in used.items() if v in (seed, seed + 1)}
    if clash:
        raise ConfigError(
            "--seed",
            [
                (
                    "seed",
                    seed,
                    f"a seed (and seed + 1) the training did not use: {clash}",
                )
            ],
        )


def _case_options(card, workspace) -> dict[str, Any]:
    """Case options: the dataset's, when it is in the workspace; else its horizon."""
    name = card.training.get("dataset")
    if workspace is not None and name:
        try:
            from medtwin_ml.datasets.store import open_dataset

            config = open_dataset(workspace.dataset(name)).manifest["config"]
            return dict(config.get("options") or {})
        except Exception as exc:  # any unreadable dataset falls back to the horizon
            logger.info("dataset %s not readable for its options: %s", name, exc)
    horizon = int(card.input_domain.get("horizon_steps", 0))
    if horizon < 1:
        return {}
    unit = card.integration.time_unit
    return {f"duration_{unit}": horizon * card.integration.step}


def _reliability(
    cal_pred: np.ndarray,
    cal_ref: np.ndarray,
    pred: np.ndarray,
    ref: np.ndarray,
    names: Sequence[str],
) -> list[tuple[float, float]]:
    """Observed coverage of intervals fitted at several levels, pooled outputs."""
    points = []
    for level in _RELIABILITY_LEVELS:
        unc = fit_conformal(cal_pred, cal_ref, names, level)
        lower, upper = intervals(unc, pred, names)
        points.append((level, float(np.mean(coverage(lower, upper, ref)))))
    return points


def validate_bundle(
    bundle: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    n_cases: int = 100,
    n_corners: int = 16,
    n_calibration: int = 200,
    context: ContextOfUse | str | os.PathLike[str] | None = None,
    seed: int = DEFAULT_SEED,
    level: float = 0.9,
    predictor: Predictor | None = None,
    run_verification: bool = True,
    update_card: bool = True,
    log_mlflow: bool = True,
    workspace=None,
) -> ValidationOutcome:
    """Validate a bundle against its twin's full solver and write the report.

    Args:
        bundle: the bundle folder.
        out: folder for ``report.html`` and ``report.json``.
        n_cases: fresh in-domain study cases.
        n_corners: cases at corners of the design domain.
        n_calibration: calibration cases, drawn only when the card lacks a
            validity detector or calibrated intervals.
        context: a context of use, or its file; default the twin's file in
            :data:`CONTEXTS`.
        seed: seed of the study cases; ``seed + 1`` draws the calibration set.
            Refused when the training used it.
        level: nominal level of intervals fitted here.
        predictor: ``(cases, n_steps) -> y`` in place of the bundle's model (for
            tests and for comparing other surrogates on the same cases).
        run_verification: run the twin's verification checks.
        update_card: write the metrics, and what was fitted here, into the card.
        log_mlflow: log the report to the bundle's training run when reachable.
        workspace: a :class:`~medtwin_ml.workspace.Workspace` to find the training
            dataset in (its seed and case options); optional.
    """
    from medtwin_ml.export.bundle import update_card as _update_card
    from medtwin_ml.export.runtime import SurrogateRunner

    # 1. Bundle, context, seeds.
    for key, value, low in (
        ("cases", n_cases, 1),
        ("corners", n_corners, 0),
        ("calibration", n_calibration, 10),
    ):
        if value < low:
            raise ConfigError(f"--{key}", [(key, value, f"an integer >= {low}")])
    runner = SurrogateRunner(bundle)
    card, spec = runner.card, runner.twin
    if context is None:
        context = default_context(spec.name)
    if not isinstance(context, ContextOfUse):
        context = load_config(context, ContextOfUse)
    names = [s.name for s in card.outputs]
    units = [s.unit for s in card.outputs]
    check_context(context, spec.name, names, list(spec.outcome_units))
    used = _training_seeds(card, workspace)
    _check_seed(seed, used)

    # 2. Cases.
    design = card.input_domain.get("design") or spec.input_domain.model_dump()
    domain = InputDomain.model_validate(design)
    cohort = card.input_domain.get("cohort") or (
        spec.cohorts[0] if spec.cohorts else ""
    )
    options = _case_options(card, workspace)
    n_steps = int(card.input_domain.get("horizon_steps", 0))
    if n_steps < 1:
        raise ConfigError(
            str(bundle), [("input_domain.horizon_steps", n_steps, "a positive integer")]
        )
    cases, kind, _ = draw_cases(
        spec, domain, cohort, n_cases, seed, n_corners=n_corners, options=options
    )
    need_cal = not card.validity or not card.uncertainty
    cal_cases: list[Case] = []
    if need_cal:
        cal_cases, _, _ = draw_cases(
            spec, domain, cohort, n_calibration, seed + 1, options=options
        )
    logger.info(
        "%d study, %d corner and %d calibration cases",
        int(np.sum(kind == STUDY)),
        n_corners,
        len(cal_cases),
    )

    # 3. Both models on every case.
    every = cases + cal_cases
    ref_all = solve_reference(spec, every, names, runner.step, n_steps)
    predict = predictor or (
        lambda c, k: runner.run(runner.parameters(c), runner.controls(c, k))
    )
    pred_all = np.concatenate(
        [
            np.asarray(predict(every[i : i + 256], n_steps), dtype=float)
            for i in range(0, len(every), 256)
        ]
    )
    features_all = case_features(
        runner.parameters(every), runner.controls(every, n_steps), runner.step
    )
    n = len(cases)
    pred, ref, features = pred_all[:n], ref_all[:n], features_all[:n]

    # 4. What the card lacks, fitted on the calibration set.
    fitted: dict[str, Any] = {}
    if card.validity:
        detector = ValidityDetector.from_dict(card.validity)
        domain_source = "bundle card"
    else:
        fnames = feature_names(
            [s.name for s in card.parameters], [s.name for s in card.controls]
        )
        detector = ValidityDetector.fit(features_all[n:], fnames)
        fitted["validity"] = detector.to_dict()
        domain_source = f"fitted here on calibration cases, seed {seed + 1}"
    reliability: list[tuple[float, float]] = []
    if card.uncertainty:
        uncertainty = dict(card.uncertainty)
        unc_source = "bundle card"
    else:
        uncertainty = fit_conformal(pred_all[n:], ref_all[n:], names, level)
        fitted["uncertainty"] = uncertainty
        unc_source = f"fitted here on calibration cases, seed {seed + 1}"
        sel = kind == STUDY
        reliability = _reliability(
            pred_all[n:], ref_all[n:], pred[sel], ref[sel], names
        )

    # 5. The solver's own checks.
    checks = []
    if run_verification and spec.verification is not None:
        checks = [
            {
                "name": c.name,
                "passed": bool(c.passed),
                "measured": float(c.measured),
                "tolerance": float(c.tolerance),
                "detail": c.detail,
            }
            for c in spec.verification()
        ]

    # 6. Score, judge, report.
    study = run_study(
        pred,
        ref,
        names=names,
        units=units,
        step=runner.step,
        context=context,
        kind=kind,
        outcomes=spec.outcomes,
        features=features,
        detector=detector,
        uncertainty=uncertainty,
        solver_checks_failed=(
            sum(not c["passed"] for c in checks) if run_verification else None
        ),
        time_unit=runner.card.integration.time_unit,
    )
    created = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    provenance = {
        "created_utc": created,
        "medtwin_ml_version": __version__,
        "solver_version": spec.solver_version,
        "seed": seed,
        "calibration_seed": seed + 1 if need_cal else None,
        "training_seeds": used,
        "cohort": cohort,
        "case_options": options,
        "n_steps": n_steps,
        "step": runner.step,
        "time_unit": card.integration.time_unit,
        "training_run_id": card.training.get("run_id"),
        "dataset": card.training.get("dataset"),
        "dataset_sha256": card.training.get("dataset_sha256"),
    }
    summary_domain = {
        "method": detector.to_dict()["method"],
        "n_features": len(detector.names),
        "features": detector.names,
        "threshold": detector.threshold,
        "quantile": detector.quantile,
        "n_train": detector.n_train,
        "source": domain_source,
    }
    summary_unc = {k: v for k, v in uncertainty.items() if k != "half_width"} | {
        "source": unc_source,
        "reliability": reliability,
    }
    bundle_info = {
        "path": str(Path(bundle)),
        "name": card.name,
        "version": card.version,
        "twin": card.twin,
        "model_sha256": card.model_sha256,
    }
    data = report_data(
        study,
        context,
        bundle=bundle_info,
        solver_checks=checks,
        provenance=provenance,
        domain=summary_domain,
        uncertainty=summary_unc,
    )
    figs = figures(
        study,
        context,
        threshold=detector.threshold,
        level=float(uncertainty.get("level", level)),
        reliability=reliability,
    )
    html_path, json_path = write_report(out, data, figs)
    logger.info("report written to %s", html_path)

    # 7. Card and tracking.
    card_updated = False
    if update_card:
        validation = dict(card.validation)
        validation["solver_study"] = {
            "created_utc": created,
            "passed": study.passed,
            "question": context.question,
            "model_risk_level": context.model_risk.level,
            "seed": seed,
            "n_cases": int(np.sum(kind == STUDY)),
            "n_corners": int(np.sum(kind != STUDY)),
            "metrics": data["metrics"],
            "criteria": [
                {k: c[k] for k in ("name", "metric", "value", "bound", "passed")}
                for c in data["criteria"]
            ],
        }
        _update_card(bundle, validation=validation, **fitted)
        card_updated = True
    logged = False
    if log_mlflow:
        logged = log_to_mlflow(card.training, html_path, json_path, study.metrics)
        logged = logged and _tag(card.training, study.passed)
    return ValidationOutcome(
        passed=study.passed,
        html=html_path,
        json=json_path,
        metrics=study.metrics,
        criteria=study.criteria,
        card_updated=card_updated,
        mlflow_logged=logged,
    )


def _client(training: dict[str, Any]):
    run_id, uri = training.get("run_id"), training.get("tracking_uri")
    if not run_id or not uri:
        logger.info("the card names no training run; the report is not logged")
        return None, None
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).is_file():
        logger.info("tracking store %s not found; the report is not logged", uri)
        return None, None
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        logger.info("mlflow is not installed; the report is not logged")
        return None, None
    return MlflowClient(tracking_uri=uri, registry_uri=uri), run_id


def log_to_mlflow(
    training: dict[str, Any],
    html_path: Path,
    json_path: Path,
    metrics: dict[str, float],
) -> bool:
    """Log the report files and the metrics to the bundle's training run.

    Returns whether they were logged; an unknown or unreachable run is skipped with
    a log line, never an error (validation must not depend on the tracking server).
    """
    client, run_id = _client(training)
    if client is None:
        return False
    try:
        from mlflow.entities import Metric

        client.get_run(run_id)
        client.log_artifact(run_id, str(html_path), "validation")
        client.log_artifact(run_id, str(json_path), "validation")
        stamp = int(_dt.datetime.now(_dt.UTC).timestamp() * 1000)
        batch = [
            Metric(f"validation_{k}", float(v), stamp, 0)
            for k, v in metrics.items()
            if np.isfinite(v)
        ]
        for i in range(0, len(batch), 500):
            client.log_batch(run_id, metrics=batch[i : i + 500])
    except Exception as exc:  # MLflow raises its own types for unreachable stores
        logger.warning("could not log the report to MLflow run %s: %s", run_id, exc)
        return False
    logger.info("report logged to MLflow run %s", run_id)
    return True


def _tag(training: dict[str, Any], passed: bool) -> bool:
    client, run_id = _client(training)
    if client is None:
        return False
    try:
        client.set_tag(run_id, "medtwin.validation", "passed" if passed else "failed")
    except Exception as exc:  # MLflow raises its own types for unreachable stores
        logger.warning("could not tag MLflow run %s: %s", run_id, exc)
        return False
    return True
