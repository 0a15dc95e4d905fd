"""``medtwin validate`` end to end on a real tiny diabetes bundle."""

from __future__ import annotations

import base64
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from medtwin_ml.errors import ConfigError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def validated(diabetes_bundle, tmp_path_factory, monkeypatch_module):
    """The CLI run once on a copy of the bundle: (result, bundle copy, out, ws)."""
    from medtwin_ml.cli import app

    ws, bundle = diabetes_bundle
    root = tmp_path_factory.mktemp("validated")
    copy = shutil.copytree(bundle, root / "bundle")
    out = root / "report"
    monkeypatch_module.setenv("MEDTWIN_HOME", str(ws.root))
    args = ["validate", str(copy), "--out", str(out), "--cases", "24"]
    args += ["--corners", "4", "--calibration", "40"]
    result = CliRunner().invoke(app, args)
    return result, copy, out, ws


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_cli_writes_html_and_json_and_exit_code_follows_verdict(validated):
    result, _, out, _ = validated
    assert result.exit_code in (0, 1), result.output
    data = json.loads((out / "report.json").read_text())
    assert result.exit_code == (0 if data["passed"] else 1)
    assert len(data["criteria"]) == 9  # the default context at model risk 4
    assert data["passed"] == all(c["passed"] for c in data["criteria"])
    assert data["cases"] == {**data["cases"], "study": 24, "corners": 4}
    assert data["metrics"]["n_cases"] == 24
    assert {c["name"] for c in data["solver_checks"]} == {
        "basal_drift_mg_dl",
        "tolerance_convergence_mg_dl",
        "carb_appearance_fraction",
    }
    assert (
        data["provenance"]["seed"] not in data["provenance"]["training_seeds"].values()
    )
    # Self-contained: every figure is an inline PNG that decodes.
    page = (out / "report.html").read_text()
    figures = re.findall(r"data-figure='([^']+)'[^>]*base64,([^']+)'", page)
    assert {name for name, _ in figures} >= {
        "error_distributions",
        "worst_cases",
        "error_across_domain",
        "calibration",
        "clarke_plasma_glucose_mg_dl",
    }
    for _, b64 in figures:
        assert base64.b64decode(b64)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in page and "https://" not in page


def test_calibrated_intervals_cover_held_out_solver_values(validated):
    _, _, out, _ = validated
    metrics = json.loads((out / "report.json").read_text())["metrics"]
    # Nominal 90 % intervals from 40 calibration cases, judged on 24 fresh ones
    # (3480 glucose values, strongly correlated within a case).
    assert metrics["plasma_glucose_mg_dl.coverage_pct"] >= 88.0
    assert metrics["plasma_insulin_pmol_l.coverage_pct"] >= 88.0


def test_card_gets_detector_intervals_and_metrics(validated):
    from medtwin_ml.export.bundle import load_bundle
    from medtwin_ml.validation.domain import ValidityDetector

    _, copy, out, _ = validated
    card, _ = load_bundle(copy)  # checksums still verify after the update
    assert card.uncertainty["method"] == "split_conformal"
    assert len(card.uncertainty["half_width"]["plasma_glucose_mg_dl"]) == 49
    det = ValidityDetector.from_dict(card.validity)
    assert det.names[-1] == "carbs_eaten_g.max_per_step"
    study = card.validation["solver_study"]
    data = json.loads((out / "report.json").read_text())
    assert study["metrics"] == data["metrics"] and study["passed"] == data["passed"]
    assert "held_out_patients" in card.validation  # training's entry is kept


def test_report_is_logged_to_the_training_run(validated):
    from mlflow.tracking import MlflowClient

    _, copy, _, ws = validated
    run_id = json.loads((copy / "card.json").read_text())["training"]["run_id"]
    client = MlflowClient(ws.tracking_uri, ws.tracking_uri)
    paths = {a.path for a in client.list_artifacts(run_id, "validation")}
    assert paths == {"validation/report.html", "validation/report.json"}
    run = client.get_run(run_id)
    assert "validation_plasma_glucose_mg_dl.rmse" in run.data.metrics
    assert run.data.tags["medtwin.validation"] in ("passed", "failed")


def test_errors_grow_outside_the_domain_and_the_detector_flags_them(diabetes_bundle):
    from medtwin_ml.export.runtime import SurrogateRunner
    from medtwin_ml.validation.domain import (
        ValidityDetector,
        case_features,
        feature_names,
    )
    from medtwin_ml.validation.study import draw_cases, solve_reference

    _, bundle = diabetes_bundle
    runner = SurrogateRunner(bundle)
    spec, card = runner.twin, runner.card
    k = card.input_domain["horizon_steps"]
    names = [s.name for s in card.outputs]
    opts = {"duration_min": 1440}
    domain = spec.input_domain

    def features(cases):
        return case_features(runner.parameters(cases), runner.controls(cases, k), 30)

    # A detector from 150 draws of the training domain (features need no solving).
    ref_cases, _, _ = draw_cases(spec, domain, "korean_adult", 150, 5, options=opts)
    fnames = feature_names(
        [s.name for s in card.parameters], [s.name for s in card.controls]
    )
    detector = ValidityDetector.fit(features(ref_cases), fnames)

    inside, _, rows = draw_cases(spec, domain, "korean_adult", 8, 6, options=opts)
    far = rows.assign(
        breakfast_carbs_g=200.0, lunch_carbs_g=240.0, dinner_carbs_g=240.0
    )
    patients = [c.params for c in inside]
    outside = spec.cases_from_design(pd.DataFrame(far), patients, opts)

    def rmse(cases):
        ref = solve_reference(spec, cases, names, 30, k)
        pred = runner.run(runner.parameters(cases), runner.controls(cases, k))
        return np.sqrt(np.mean((pred[..., 0] - ref[..., 0]) ** 2, axis=1))

    err_in, err_out = rmse(inside), rmse(outside)
    assert err_out.mean() > 2.0 * err_in.mean()
    ok_in, _ = detector.check(features(inside))
    ok_out, why = detector.check(features(outside))
    assert not ok_out.any()
    assert all(any("carbs_eaten_g.total" in r for r in w) for w in why)
    assert ok_in.mean() >= 0.75
    assert (
        detector.score(features(outside)).min() > detector.score(features(inside)).max()
    )


def test_a_training_seed_is_refused(diabetes_bundle, tmp_path):
    from medtwin_ml.validation.validate import validate_bundle

    ws, bundle = diabetes_bundle
    with pytest.raises(ConfigError, match="training did not use"):
        validate_bundle(bundle, tmp_path, seed=11, workspace=ws)  # the dataset's seed


def test_cli_bad_context_exits_2_naming_the_key(diabetes_bundle, tmp_path):
    from medtwin_ml.cli import app

    _, bundle = diabetes_bundle
    ctx = tmp_path / "ctx.yaml"
    ctx.write_text(
        "twin: diabetes\nquestion: q\n"
        "quantity_of_interest: {name: time_below_70_pct, unit: '%'}\n"
        "decision_threshold: {value: 4, unit: '%'}\n"
        "model_risk: {influence: low, consequence: low}\n"
        "acceptance_criteria: [{name: x, metric: plasma_glucose_mg_dl.rmse}]\n"
    )
    result = CliRunner().invoke(
        app,
        ["validate", str(bundle), "--out", str(tmp_path / "o"), "--context", str(ctx)],
    )
    assert result.exit_code == 2
    assert "acceptance_criteria.0" in result.output and "at_most" in result.output
    assert not (tmp_path / "o").exists()
