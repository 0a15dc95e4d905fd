"""Devices (pump, CGM, controllers), outcome metrics, cohorts and dataset cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from medtwin_ml.cohorts.diabetes import (
    KOREAN_BW_KG,
    cohort_card,
    cohort_domain,
    sample_cohort,
)
from medtwin_ml.devices.cgm import CgmSettings, cgm_noise_mg_dl, johnson_su
from medtwin_ml.devices.glucose_controllers import (
    BasalBolusController,
    BasalBolusSettings,
    PidController,
    PidSettings,
)
from medtwin_ml.devices.insulin_pump import (
    PumpSettings,
    deliver_basal_u_per_h,
    deliver_bolus_u,
)
from medtwin_ml.solvers.diabetes import INPUT_DOMAIN, TWIN, cases_from_design
from medtwin_ml.solvers.diabetes.outcomes import glycaemic_outcomes, risk_transform


def test_pump_rounds_down_to_increments_and_caps():
    pump = PumpSettings(max_basal_u_per_h=3, max_bolus_u=10)
    np.testing.assert_allclose(
        deliver_basal_u_per_h(np.array([1.3695, 0.3, -1, 7]), pump),
        [1.35, 0.3, 0, 3],
    )
    np.testing.assert_allclose(deliver_bolus_u(np.array([4.049, 12]), pump), [4.0, 10])
    pumps = [PumpSettings(bolus_increment_u=0.5), PumpSettings(bolus_increment_u=0.1)]
    np.testing.assert_allclose(
        deliver_bolus_u(np.array([1.27, 1.27]), pumps), [1.0, 1.2]
    )


def test_cgm_noise_is_seeded_and_follows_the_published_model():
    s = CgmSettings(sample_period_min=15)
    a = cgm_noise_mg_dl(s, 15 * 40000, seed=1)
    np.testing.assert_array_equal(a, cgm_noise_mg_dl(s, 15 * 40000, seed=1))
    assert not np.array_equal(a, cgm_noise_mg_dl(s, 15 * 40000, seed=2))
    # Undo the Johnson transform: the AR(1) sequence has lag-1 correlation pacf and
    # stationary variance pacf^2 / (1 - pacf^2); 40000 samples give a standard error
    # of about 0.004 on the correlation, 0.03 is eight of them.
    e = s.gamma + s.delta * np.arcsinh((a - s.xi_mg_dl) / s.lambda_mg_dl)
    assert np.corrcoef(e[:-1], e[1:])[0, 1] == pytest.approx(0.7, abs=0.03)
    assert e.var() == pytest.approx(0.49 / 0.51, rel=0.05)
    # The mean of the noise matches the Johnson SU expectation under that variance.
    sd = np.sqrt(0.49 / 0.51)
    expected, _ = integrate.quad(
        lambda x: johnson_su(x, s) * stats.norm.pdf(x, scale=sd), -12, 12
    )
    assert a.mean() == pytest.approx(expected, abs=0.5)
    assert np.all(cgm_noise_mg_dl(CgmSettings(noise=False), 100, 0) == 0)


def test_basal_bolus_controller_doses_carbs_and_correction():
    ctrl = BasalBolusController(
        [BasalBolusSettings(), BasalBolusSettings(carb_ratio_g_per_u=5)],
        np.array([1.0, 2.0]),
        np.array([10.0, 10.0]),
        np.array([40.0, 40.0]),
    )
    basal, bolus = ctrl.act(
        0, np.array([200.0, 140.0]), np.ones(2, bool), np.array([60.0, 60.0])
    )
    np.testing.assert_allclose(basal, [1.0, 2.0])
    np.testing.assert_allclose(bolus, [6 + 80 / 40, 12])
    _, none = ctrl.act(1, np.array([300.0, 300.0]), np.ones(2, bool), np.zeros(2))
    np.testing.assert_array_equal(none, 0)


def test_pid_raises_insulin_above_target_and_suspends_far_below():
    ctrl = PidController(
        [PidSettings(ki_per_h_min=0, kd_min_per_h=0)] * 2, np.ones(2), np.full(2, 40.0)
    )
    rate, bolus = ctrl.act(0, np.array([200.0, 20.0]), np.ones(2, bool), np.zeros(2))
    np.testing.assert_allclose(rate, [1 + 0.5 * 80 / 40, 0.0])
    assert np.all(bolus == 0)
    held, _ = ctrl.act(1, np.array([400.0, 400.0]), np.zeros(2, bool), np.zeros(2))
    np.testing.assert_allclose(held, rate)


def test_outcomes_of_many_traces_match_one_at_a_time():
    # Traces dipping below 70 mg/dL in runs of many lengths, some at either end.
    rng = np.random.default_rng(3)
    g = 100 + 60 * np.sin(rng.uniform(0.05, 0.6, (40, 1)) * np.arange(97)[None, :])
    g += rng.normal(0, 15, g.shape)
    many = glycaemic_outcomes(g, 5.0)
    assert many["hypo_events_count"].max() >= 2
    for i in range(len(g)):
        one = glycaemic_outcomes(g[i], 5.0)
        # By hand: runs of 3 or more samples (15 min at 5 min) below 70.
        runs, length = 0, 0
        for below in [*(g[i] < 70), False]:
            if below:
                length += 1
            else:
                runs += length >= 3
                length = 0
        assert many["hypo_events_count"][i] == one["hypo_events_count"] == runs
        for name, values in many.items():
            assert values[i] == pytest.approx(float(one[name]), rel=1e-12, abs=1e-12)


def test_outcomes_by_hand():
    g = np.array([[50, 60, 100, 150, 190, 260, 100, 100, 100, 100]], dtype=float)
    out = glycaemic_outcomes(g, dt_min=5.0)
    assert out["time_in_range_pct"][0] == pytest.approx(60)
    assert out["time_below_70_pct"][0] == pytest.approx(20)
    assert out["time_below_54_pct"][0] == pytest.approx(10)
    assert out["time_above_180_pct"][0] == pytest.approx(20)
    assert out["time_above_250_pct"][0] == pytest.approx(10)
    assert out["mean_glucose_mg_dl"][0] == pytest.approx(121)
    assert out["glucose_cv_pct"][0] == pytest.approx(100 * g.std() / 121)
    # Two samples below 70 at 5 min are 10 min: not an event; three would be.
    assert out["hypo_events_count"][0] == 0
    three = glycaemic_outcomes(np.array([100, 60, 60, 60, 100.0]), dt_min=5.0)
    assert three["hypo_events_count"] == 1
    f = risk_transform(g[0])
    assert out["lbgi"][0] == pytest.approx(np.sum(10 * f[f < 0] ** 2) / 10)
    assert out["hbgi"][0] == pytest.approx(np.sum(10 * f[f > 0] ** 2) / 10)


def test_risk_transform_properties():
    # Kovatchev 1997: f is zero near 112.5 mg/dL and maps 20 and 600 mg/dL to about
    # -sqrt(10) and +sqrt(10) (risk 100 at both ends).
    assert abs(risk_transform(112.5)) < 0.01
    assert 10 * risk_transform(20.0) ** 2 == pytest.approx(100, rel=0.02)
    assert 10 * risk_transform(600.0) ** 2 == pytest.approx(100, rel=0.02)
    with pytest.raises(ValueError, match="finite"):
        glycaemic_outcomes(np.array([100, np.nan]), 1.0)


@pytest.mark.parametrize("name", TWIN.cohorts)
def test_cohort_sampling_is_seeded_and_inside_its_domain(name):
    a = TWIN.sample_cohort(name, 25, 3)
    b = sample_cohort(name, 25, 3)
    assert a == b
    assert a != sample_cohort(name, 25, 4)
    domain = cohort_domain(name)
    for p in a:
        assert domain.outside(p.model_dump()) == []
    card = cohort_card(name)
    assert "simglucose" in card["source"] and "MIT" in card["licence"]


def test_korean_cohort_rescales_body_weight_and_therapy():
    patients = sample_cohort("korean_adult", 400, seed=0)
    bw = np.array([p.BW for p in patients])
    mean_target = 0.5 * (KOREAN_BW_KG["male"] + KOREAN_BW_KG["female"])
    assert bw.mean() == pytest.approx(mean_target, rel=0.05)
    assert KOREAN_BW_KG["male"] == pytest.approx(73.2, abs=0.05)
    p = patients[0]
    base = next(q for q in sample_cohort("adult", 400, 0) if q.Name in p.Name)
    assert p.CR * p.BW == pytest.approx(base.CR * base.BW)
    assert p.basal_u_per_h / p.BW == pytest.approx(base.basal_u_per_h / base.BW)
    assert "BW" in cohort_card("korean_adult")["rescaled"]


def test_cases_from_design_carry_insulin_explicitly(adults):
    design = INPUT_DOMAIN.sample(4, seed=0)
    cases = cases_from_design(design, adults[:4], {"duration_min": 600})
    assert len(cases) == 4
    row, case = design.iloc[0], cases[0]
    s = case.scenario
    assert s.duration_min == 600
    assert s.basal_u_per_h == pytest.approx(
        row["basal_scale"] * adults[0].basal_u_per_h
    )
    assert [m.time_min for m in s.meals] == pytest.approx(
        [row["breakfast_time_min"], row["lunch_time_min"], row["dinner_time_min"]]
    )
    assert s.boluses[0].units == pytest.approx(
        row["bolus_scale"] * row["breakfast_carbs_g"] / adults[0].CR
    )
    with pytest.raises(ValueError, match="basal_scale"):
        cases_from_design(design.drop(columns="basal_scale"), adults[:4])
