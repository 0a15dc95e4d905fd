"""Split conformal intervals: coverage on synthetic errors of known spread."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medtwin_ml.validation.uncertainty import coverage, fit_conformal, intervals

T = 25
SIGMA = np.linspace(1.0, 6.0, T)  # error spread grows along the horizon


def _pairs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and references whose errors are N(0, SIGMA_t) and N(2, 1)."""
    rng = np.random.default_rng(seed)
    pred = rng.uniform(80, 200, size=(n, T, 2))
    err = np.stack(
        [rng.standard_normal((n, T)) * SIGMA, 2.0 + rng.standard_normal((n, T))],
        axis=-1,
    )
    return pred, pred + err


def test_nominal_90_covers_at_least_88_percent_of_fresh_references():
    pred, ref = _pairs(400, seed=1)
    unc = fit_conformal(pred, ref, ["g", "i"], level=0.9)
    new_pred, new_ref = _pairs(3000, seed=2)
    lower, upper = intervals(unc, new_pred)
    cov = coverage(lower, upper, new_ref)
    # Conditional on 400 calibration cases, per-step coverage has standard deviation
    # sqrt(0.9 * 0.1 / 400) = 1.5 %; averaged over 25 steps it is well inside.
    assert np.all(cov >= 0.88) and np.all(cov <= 0.93)
    # The half-width follows the spread: |N(0, s)| has its 90 % quantile at 1.645 s.
    np.testing.assert_allclose(unc["half_width"]["g"], 1.645 * SIGMA, rtol=0.2)


def test_card_entry_is_json_ready_and_names_the_method():
    pred, ref = _pairs(20, seed=3)
    unc = json.loads(json.dumps(fit_conformal(pred, ref, ["g", "i"])))
    assert unc["method"] == "split_conformal" and unc["level"] == 0.9
    assert unc["n_calibration"] == 20 and len(unc["half_width"]["i"]) == T


def test_half_width_is_the_finite_sample_order_statistic():
    pred = np.zeros((9, 1, 1))
    ref = np.arange(1.0, 10.0).reshape(9, 1, 1)  # scores 1..9
    # n = 9, level 0.9: rank ceil(10 * 0.9) = 9, the largest score.
    assert fit_conformal(pred, ref, ["y"])["half_width"]["y"] == [9.0]
    assert fit_conformal(pred, ref, ["y"], level=0.5)["half_width"]["y"] == [5.0]
    with pytest.raises(ValueError, match="at least 9"):
        fit_conformal(pred[:8], ref[:8], ["y"])


def test_longer_horizon_takes_the_widest_interval():
    unc = {"method": "split_conformal", "level": 0.9, "half_width": {"y": [1, 3, 2]}}
    lower, upper = intervals(unc, np.zeros((1, 5, 1)))
    np.testing.assert_allclose(upper[0, :, 0], [1, 3, 2, 3, 3])
    np.testing.assert_allclose(lower, -upper)


def test_wrong_inputs_are_refused():
    with pytest.raises(ValueError, match="equal shapes"):
        fit_conformal(np.zeros((10, 2, 1)), np.zeros((10, 3, 1)), ["y"])
    with pytest.raises(ValueError, match="level"):
        fit_conformal(np.zeros((10, 2, 1)), np.zeros((10, 2, 1)), ["y"], level=1.0)
    with pytest.raises(ValueError, match="no half-width"):
        intervals(
            {"method": "split_conformal", "half_width": {"y": [1]}},
            np.zeros((1, 1, 1)),
            ["z"],
        )
