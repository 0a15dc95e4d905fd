"""Error metrics and the Clarke error grid, on points whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from medtwin_ml.validation.metrics import (
    bias,
    clarke_zone_pct,
    clarke_zones,
    mae,
    mard_pct,
    max_abs_error,
    rmse,
)


@pytest.mark.parametrize(
    ("reference", "estimate", "zone"),
    [
        (100, 100, "A"),  # exact
        (100, 119, "A"),  # within 20 %
        (60, 65, "A"),  # both hypoglycaemic
        (100, 125, "B"),  # 25 % high, benign
        (300, 200, "B"),  # 33 % low at high glucose, benign
        (100, 215, "C"),  # y >= x + 110: over-correction
        (150, 25, "C"),  # y <= 7/5 x - 182
        (300, 100, "D"),  # hyperglycaemia read as normal
        (50, 100, "D"),  # hypoglycaemia read as normal
        (65, 100, "D"),  # 175/3 <= x <= 70 and y >= 6/5 x
        (50, 200, "E"),  # hypo read as hyper
        (200, 50, "E"),  # hyper read as hypo
    ],
)
def test_clarke_zone_of_known_points(reference, estimate, zone):
    assert clarke_zones(np.array([estimate]), np.array([reference]))[0] == zone


def test_clarke_percentages_add_up_and_shape_is_kept():
    ref = np.array([[100.0, 50.0], [200.0, 300.0]])
    est = np.array([[100.0, 200.0], [50.0, 100.0]])
    zones = clarke_zones(est, ref)
    assert zones.shape == (2, 2)
    pct = clarke_zone_pct(est, ref)
    assert pct == {"A": 25.0, "B": 0.0, "C": 0.0, "D": 25.0, "E": 50.0}


def test_clarke_refuses_mismatched_or_non_finite():
    with pytest.raises(ValueError, match="shape"):
        clarke_zones(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="finite"):
        clarke_zones(np.array([np.nan]), np.array([100.0]))


def test_metrics_of_a_constant_offset():
    ref = np.linspace(80, 200, 50).reshape(5, 10)
    pred = ref + 15.0
    assert bias(pred, ref) == pytest.approx(15.0)
    assert mae(pred, ref) == pytest.approx(15.0)
    assert rmse(pred, ref) == pytest.approx(15.0)
    assert max_abs_error(pred, ref) == pytest.approx(15.0)
    assert mard_pct(pred, ref) == pytest.approx(100 * np.mean(15.0 / ref))
    assert bias(ref, ref) == 0.0 and rmse(ref, ref) == 0.0
