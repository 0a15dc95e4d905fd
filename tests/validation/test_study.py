"""The study machinery with stand-in surrogates whose answers are known.

The reference is the diabetes twin's full solver on fresh cases; a "perfect"
surrogate returns the solver's own trajectory, a biased one adds 15 mg/dL.
"""

from __future__ import annotations

import numpy as np
import pytest

from medtwin_ml.config import load_config
from medtwin_ml.errors import ConfigError
from medtwin_ml.registry import get_twin
from medtwin_ml.validation.context import ContextOfUse
from medtwin_ml.validation.study import (
    CORNER,
    STUDY,
    check_context,
    corner_design,
    draw_cases,
    run_study,
    solve_reference,
)
from medtwin_ml.validation.uncertainty import fit_conformal
from medtwin_ml.validation.validate import CONTEXTS

NAMES = ["plasma_glucose_mg_dl", "plasma_insulin_pmol_l"]
UNITS = ["mg/dL", "pmol/L"]
STEP = 10.0
N_STEPS = 144


@pytest.fixture(scope="module")
def context() -> ContextOfUse:
    return load_config(CONTEXTS / "diabetes_context.yaml", ContextOfUse)


@pytest.fixture(scope="module")
def solved():
    spec = get_twin("diabetes")
    cases, kind, rows = draw_cases(
        spec,
        spec.input_domain,
        "korean_adult",
        10,
        seed=123,
        n_corners=2,
        options={"duration_min": 1440},
    )
    ref = solve_reference(spec, cases, NAMES, STEP, N_STEPS, chunk=8)
    return spec, kind, rows, ref


def _study(spec, kind, pred, ref, context, **kw):
    return run_study(
        pred,
        ref,
        names=NAMES,
        units=UNITS,
        step=STEP,
        context=context,
        kind=kind,
        outcomes=spec.outcomes,
        **kw,
    )


def test_cases_are_fresh_sobol_rows_then_corners(solved):
    spec, kind, rows, ref = solved
    assert list(kind) == [STUDY] * 10 + [CORNER] * 2
    low, high = spec.input_domain.bounds()
    np.testing.assert_allclose(rows.iloc[10], low)  # the all-low corner
    np.testing.assert_allclose(rows.iloc[11], high)  # the all-high corner
    assert ref.shape == (12, N_STEPS + 1, 2)
    assert np.all(ref[..., 0] > 0)


def test_a_surrogate_equal_to_the_solver_has_zero_error(solved, context):
    spec, kind, _, ref = solved
    unc = fit_conformal(ref[kind == STUDY], ref[kind == STUDY], NAMES)
    res = _study(spec, kind, ref.copy(), ref, context, uncertainty=unc)
    m = res.metrics
    for key in ("mae", "rmse", "bias", "max_abs_error", "mard_pct"):
        assert m[f"plasma_glucose_mg_dl.{key}"] == 0.0
        assert m[f"corners.plasma_insulin_pmol_l.{key}"] == 0.0
    assert m["time_below_70_pct.mae"] == 0.0
    assert m["plasma_glucose_mg_dl.clarke_a_pct"] == 100.0
    assert m["decision_agreement_pct"] == 100.0
    assert m["plasma_glucose_mg_dl.coverage_pct"] == 100.0
    verdict = {c["name"]: c["passed"] for c in res.criteria}
    # Only the study size (10 < 100 cases) and the solver checks (not run) fail.
    assert {k for k, v in verdict.items() if not v} == {"study size", "solver verified"}


def test_time_axes_carry_the_unit_of_the_step(solved, context):
    from medtwin_ml.validation.report import time_label

    spec, kind, _, ref = solved
    res = _study(spec, kind, ref.copy(), ref, context, time_unit="min")
    assert res.time_unit == "min"
    assert time_label(res) == "time [min]"
    np.testing.assert_allclose(res.times[:3], [0.0, STEP, 2 * STEP])
    assert time_label(_study(spec, kind, ref.copy(), ref, context)) == "time"


def test_a_biased_surrogate_is_detected_and_fails_its_criterion(solved, context):
    spec, kind, _, ref = solved
    pred = ref.copy()
    pred[..., 0] += 15.0
    res = _study(spec, kind, pred, ref, context, solver_checks_failed=0)
    m = res.metrics
    assert m["plasma_glucose_mg_dl.bias"] == pytest.approx(15.0)
    assert m["plasma_glucose_mg_dl.mae"] == pytest.approx(15.0)
    sel = kind == STUDY
    expected_mard = 100 * np.mean(15.0 / ref[sel, :, 0])
    assert m["plasma_glucose_mg_dl.mard_pct"] == pytest.approx(expected_mard)
    assert m["plasma_insulin_pmol_l.rmse"] == 0.0
    assert m["plasma_glucose_mg_dl.clarke_a_pct"] < 100.0
    verdict = {c["name"]: c["passed"] for c in res.criteria}
    assert verdict["glucose bias"] is False
    assert verdict["solver verified"] is True
    assert not res.passed


def test_context_that_cannot_be_judged_is_refused_before_solving(context):
    bad = context.model_copy(
        update={
            "acceptance_criteria": [
                context.acceptance_criteria[0].model_copy(
                    update={"metric": "plasma_glucose_mg_dl.mrad_pct"}
                )
            ],
            "error_grid": ["cgm"],
        }
    )
    with pytest.raises(ConfigError) as info:
        check_context(bad, "diabetes", NAMES, ["time_below_70_pct"])
    text = str(info.value)
    assert "acceptance_criteria.0.metric" in text and "mrad_pct" in text
    assert "error_grid.0" in text
    with pytest.raises(ConfigError, match="the bundle's twin 'skin'"):
        check_context(context, "skin", NAMES, ["time_below_70_pct"])


def test_context_file_errors_name_key_and_expectation(tmp_path):
    path = tmp_path / "ctx.yaml"
    text = (CONTEXTS / "diabetes_context.yaml").read_text()
    path.write_text(text.replace("influence: medium", "influence: huge"))
    with pytest.raises(ConfigError, match=r"model_risk.influence: got 'huge'"):
        load_config(path, ContextOfUse)


def test_model_risk_level_selects_criteria(context):
    assert context.model_risk.level == 4
    low = context.model_copy(
        update={
            "model_risk": context.model_risk.model_copy(update={"consequence": "low"})
        }
    )
    assert low.model_risk.level == 2
    names = {c.name for c in low.applicable_criteria()}
    assert "study size" not in names and "glucose MARD" in names


def test_corner_design_is_distinct_and_capped():
    domain = get_twin("diabetes").input_domain
    corners = corner_design(domain, 40, seed=1)
    assert len(corners.drop_duplicates()) == 40
    low, high = domain.bounds()
    assert np.all((corners.to_numpy() == low) | (corners.to_numpy() == high))
    from medtwin_ml.twin import DomainVariable, InputDomain

    two = InputDomain(
        variables=[DomainVariable(name=n, unit="1", low=0, high=1) for n in "ab"]
    )
    assert len(corner_design(two, 10, seed=1)) == 4
