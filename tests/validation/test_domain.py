"""The validity detector on synthetic features where in and out are known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medtwin_ml.validation.domain import ValidityDetector, case_features, feature_names


def _correlated(n: int, seed: int) -> np.ndarray:
    """Five features, the first two strongly correlated (rho = 0.95)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 5))
    x = z.copy()
    x[:, 1] = 0.95 * z[:, 0] + np.sqrt(1 - 0.95**2) * z[:, 1]
    return x * [1.0, 2.0, 10.0, 0.1, 5.0] + [0.0, 1.0, 100.0, 0.5, -3.0]


NAMES = ["a", "b", "c", "d", "e"]


@pytest.fixture(scope="module")
def detector() -> ValidityDetector:
    return ValidityDetector.fit(_correlated(2000, seed=1), NAMES, quantile=0.99)


def test_fresh_points_like_the_training_data_are_mostly_in(detector):
    ok, reasons = detector.check(_correlated(4000, seed=2))
    # 1 % by the distance threshold plus the few beyond the training range; the
    # binomial spread of 4000 draws at 2 % is 0.2 %.
    assert 0.97 <= ok.mean() <= 0.995
    assert all(not r for r, good in zip(reasons, ok, strict=True) if good)


def test_far_points_are_flagged_with_reasons(detector):
    x = _correlated(3, seed=3)
    x[0, 2] = 100.0 + 10.0 * 8  # 8 sd out in feature c: outside the range too
    x[1, 0], x[1, 1] = 2.0, 1.0 - 2.0 * 2.0  # each in range, correlation broken
    ok, reasons = detector.check(x)
    assert not ok[0] and not ok[1]
    assert any("c = " in r and "training range" in r for r in reasons[0])
    assert not any("training range" in r for r in reasons[1])
    assert any("distance" in r for r in reasons[1])
    d = detector.score(x)
    assert d[0] > 2 * detector.threshold and d[1] > detector.threshold


def test_distance_grows_with_departure(detector):
    base = np.array([[0.0, 1.0, 100.0, 0.5, -3.0]])  # the training mean
    steps = np.array([0, 1, 2, 4, 8])
    x = np.repeat(base, len(steps), axis=0)
    x[:, 4] += 5.0 * steps
    d = detector.score(x)
    assert np.all(np.diff(d) > 0)
    assert d[0] < 0.2 and d[-1] == pytest.approx(8.0, rel=0.1)


def test_round_trip_through_json_keeps_every_answer(detector):
    again = ValidityDetector.from_dict(json.loads(json.dumps(detector.to_dict())))
    x = _correlated(50, seed=4) * 1.5
    np.testing.assert_allclose(again.score(x), detector.score(x), rtol=1e-12)
    assert (again.check(x)[0] == detector.check(x)[0]).all()


def test_constant_feature_does_not_break_the_distance():
    x = _correlated(200, seed=5)
    x[:, 3] = 0.5
    det = ValidityDetector.fit(x, NAMES)
    assert np.all(np.isfinite(det.score(x)))
    moved = x[:1].copy()
    moved[0, 3] = 0.6
    ok, reasons = det.check(moved)
    assert not ok[0] and "d = 0.6" in reasons[0][0]


def test_bad_input_is_refused_with_what_was_expected(detector):
    with pytest.raises(ValueError, match=r"expected \(n, 5\)"):
        detector.score(np.ones((2, 4)))
    with pytest.raises(ValueError, match="non-finite"):
        detector.score(np.full((1, 5), np.nan))
    with pytest.raises(ValueError, match="one name per column"):
        ValidityDetector.fit(np.ones((10, 2)), ["only"])
    with pytest.raises(ValueError, match="quantile"):
        ValidityDetector.fit(np.ones((10, 1)), ["x"], quantile=1.5)
    with pytest.raises(ValueError, match="validity method"):
        ValidityDetector.from_dict({"method": "other"})


def test_case_features_are_parameters_totals_and_maxima():
    p = np.array([[1.0, 2.0], [3.0, 4.0]])
    u = np.zeros((2, 3, 2))
    u[0, :, 0] = [0.1, 0.5, 0.2]  # total 0.8 per step unit
    u[1, :, 1] = [0.0, 9.0, 1.0]
    f = case_features(p, u, step=10.0)
    names = feature_names(["p1", "p2"], ["ins", "carb"])
    assert names == [
        "p1", "p2", "ins.total", "ins.max_per_step", "carb.total", "carb.max_per_step"
    ]  # fmt: skip
    np.testing.assert_allclose(f[0], [1, 2, 8.0, 0.5, 0, 0])
    np.testing.assert_allclose(f[1], [3, 4, 0, 0, 100.0, 9.0])
    with pytest.raises(ValueError, match="same n"):
        case_features(p, u[:1], 10.0)
