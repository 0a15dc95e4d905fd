from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from medtwin_ml.cli import app
from medtwin_ml.config import validate_input
from medtwin_ml.devices.lvad import SIMAAN_2009
from medtwin_ml.errors import ConfigError
from medtwin_ml.registry import get_twin
from medtwin_ml.solvers.cardiovascular import (
    TWIN,
    CardiovascularDevice,
    CardiovascularParameters,
    CardiovascularScenario,
    cases_from_design,
    sample_cohort,
    simulate,
    simulate_batch,
    verification,
)
from medtwin_ml.solvers.cardiovascular._windkessel import (
    impedance,
    measured_impedance,
)
from medtwin_ml.twin import Case

# A 2 ms step (the largest the scenario allows) keeps these tests fast; the
# loop's fastest eigenvalues (valve inertance, LVAD suction) stay inside RK4's
# stability region there.
FAST = {"output_interval_s": 0.01, "step_s": 0.002}


def test_registered_and_verification_passes():
    assert get_twin("cardiovascular") is TWIN
    checks = verification()
    assert len(checks) == 5
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]


@pytest.mark.parametrize(("r", "c", "zc"), [(1.0, 1.0, 0.03), (1.1, 2.0, 0.08)])
def test_windkessel_impedance_matches_closed_form(r, c, zc):
    f = np.array([0.5, 1.0, 2.0, 5.0])
    exact = impedance(f, r, c, zc)
    measured = measured_impedance(f, r, c, zc)
    # Mid-step held input: error O((w dt)^2 / 24) <= 4.1e-5 at 5 Hz, dt 1 ms.
    np.testing.assert_allclose(measured, exact, rtol=1e-4)
    # Limits: Z(0) = Zc + R, and |Z| falls towards Zc with frequency.
    assert impedance(np.array([0.0]), r, c, zc)[0] == pytest.approx(zc + r)
    assert np.all(np.diff(np.abs(measured)) < 0)


def test_baseline_adult_in_normal_ranges_and_per_beat_consistent():
    scenario = CardiovascularScenario(duration_s=4.0, **FAST)
    res = simulate(Case(CardiovascularParameters(), CardiovascularDevice(), scenario))
    s = res.summary
    assert 70 <= s["mean_arterial_pressure_mmhg"] <= 105
    assert 4.0 <= s["cardiac_output_l_min"] <= 6.5
    assert 50 <= s["ejection_fraction_pct"] <= 70
    assert s["systolic_pressure_mmhg"] > s["mean_arterial_pressure_mmhg"]
    assert s["mean_arterial_pressure_mmhg"] > s["diastolic_pressure_mmhg"]
    # Without an LVAD, output is stroke volume times rate (within the 10 ms
    # sampling of a beat's extremes, 1 %).
    assert s["cardiac_output_l_min"] == pytest.approx(
        s["stroke_volume_ml"] * s["heart_rate_bpm"] / 1000.0, rel=0.01
    )
    assert res.table.columns[0] == "time_s"
    assert len(res.table) == 401


def test_raising_lvad_speed_raises_flow_and_unloads_lv_monotonically():
    patient = sample_cohort("heart_failure", 1, seed=0)[0]
    speeds = [0.0, 8.0, 9.0, 10.0, 11.0, 12.0]
    scenario = CardiovascularScenario(duration_s=15.0, **FAST)
    cases = [
        Case(patient, CardiovascularDevice(lvad_speed_krpm=w), scenario) for w in speeds
    ]
    summary = simulate_batch(cases).summary
    assert summary["ejection_fraction_pct"][0] < 45  # a failing ventricle
    flow = summary["lvad_flow_l_min"].to_numpy()
    assert flow[0] == 0.0
    assert np.all(np.diff(flow) > 0)
    assert np.all(np.diff(summary["lv_end_diastolic_volume_ml"]) < 0)
    assert np.all(np.diff(summary["lv_peak_pressure_mmhg"]) < 0)


def test_pump_curve_inverts():
    q = SIMAAN_2009.steady_flow(np.array([10.0]), np.array([80.0]))
    assert SIMAAN_2009.head(np.array([10.0]), q) == pytest.approx(80.0)
    assert q[0] > 0


def test_pacemaker_and_baroreflex_act():
    scenario = CardiovascularScenario(duration_s=8.0, **FAST)
    base = CardiovascularParameters()
    bled = CardiovascularParameters(stressed_blood_volume_ml=1200.0)
    bled_reflex = CardiovascularParameters(
        stressed_blood_volume_ml=1200.0, baroreflex=True
    )
    cases = [
        Case(
            base, CardiovascularDevice(pacing_rate_bpm=90.0, av_delay_ms=150), scenario
        ),
        Case(
            base, CardiovascularDevice(pacing_rate_bpm=90.0, av_delay_ms=250), scenario
        ),
        Case(bled, CardiovascularDevice(), scenario),
        Case(bled_reflex, CardiovascularDevice(), scenario),
    ]
    s = simulate_batch(cases).summary
    assert s["heart_rate_bpm"][0] == pytest.approx(90.0)
    # A long AV delay spends the atrial kick early: less filling.
    assert s["lv_end_diastolic_volume_ml"][0] > s["lv_end_diastolic_volume_ml"][1] + 1
    # After blood loss the reflex raises the rate and part of the pressure.
    assert s["heart_rate_bpm"][3] > s["heart_rate_bpm"][2] + 5
    assert s["mean_arterial_pressure_mmhg"][3] > s["mean_arterial_pressure_mmhg"][2] + 5


def test_case_alone_equals_case_in_batch():
    scenario = CardiovascularScenario(duration_s=1.0, **FAST)
    patients = sample_cohort("korean_adult", 3, seed=4)
    devices = [
        CardiovascularDevice(),
        CardiovascularDevice(pacing_rate_bpm=75.0, lvad_speed_krpm=9.0),
        CardiovascularDevice(),
    ]
    cases = [Case(p, d, scenario) for p, d in zip(patients, devices, strict=True)]
    batch = simulate_batch(cases)
    alone = simulate(cases[1])
    for name in ("p_ao_mmhg", "v_lv_ml", "q_lvad_ml_s"):
        np.testing.assert_array_equal(batch.outputs[name][1], alone.table[name])
    assert batch.outputs["p_lv_mmhg"].shape == (3, 101)


def test_cohorts_are_seeded_and_scaled():
    a = sample_cohort("korean_adult", 50, seed=3)
    assert a == sample_cohort("korean_adult", 50, seed=3)
    assert a != sample_cohort("korean_adult", 50, seed=4)
    hyper = sample_cohort("hypertensive", 50, seed=3)
    r = [p.systemic_resistance_mmhg_s_per_ml for p in a]
    r_hyper = [p.systemic_resistance_mmhg_s_per_ml for p in hyper]
    assert np.mean(r_hyper) > np.mean(r) * 1.1
    hf = sample_cohort("heart_failure", 20, seed=3)
    assert all(p.lv_ees_mmhg_per_ml <= 0.5 * 2.8798 + 1e-12 for p in hf)
    with pytest.raises(ValueError, match="expected one of korean_adult"):
        sample_cohort("athletes", 2, 0)


def test_cases_from_design_pairs_rows_with_patients():
    design = TWIN.input_domain.sample(3, seed=1)
    patients = sample_cohort("heart_failure", 3, seed=1)
    cases = cases_from_design(design, patients, {"duration_s": 2.0, **FAST})
    assert [c.params for c in cases] == patients
    assert cases[1].device.lvad_speed_krpm == pytest.approx(
        design["lvad_speed_krpm"][1]
    )
    assert cases[1].device.pacing_rate_bpm == pytest.approx(
        design["pacing_rate_bpm"][1]
    )
    no_pump = cases_from_design(design, patients, {"lvad": False, "duration_s": 2.0})
    assert all(c.device.lvad_speed_krpm == 0.0 for c in no_pump)
    with pytest.raises(ConfigError, match="lvad"):
        cases_from_design(design, patients, {"lvad": "yes"})
    with pytest.raises(ValueError, match="one patient per row"):
        cases_from_design(design, patients[:2], {})


def test_batch_refuses_mixed_grids():
    cases = [
        Case(CardiovascularParameters(), CardiovascularDevice(), s)
        for s in (CardiovascularScenario(duration_s=1.0), CardiovascularScenario())
    ]
    with pytest.raises(ValueError, match="duration_s"):
        simulate_batch(cases)


@pytest.mark.parametrize(
    ("model", "data", "key"),
    [
        (CardiovascularParameters, {"lv_ees_mmhg_per_ml": 0}, "lv_ees_mmhg_per_ml"),
        (CardiovascularParameters, {"heart_rate": 70}, "heart_rate"),
        (CardiovascularDevice, {"lvad_speed_krpm": -1}, "lvad_speed_krpm"),
        (CardiovascularDevice, {"pacing_rate_bpm": float("inf")}, "pacing_rate_bpm"),
        (CardiovascularScenario, {"duration_s": -1}, "duration_s"),
        (CardiovascularScenario, {"step_s": 0.01}, "step_s"),
        (CardiovascularScenario, {"output_interval_s": 0.0025}, "whole multiple"),
    ],
)
def test_bad_input_is_refused_with_the_key(model, data, key):
    with pytest.raises(ConfigError, match=key):
        validate_input(data, model, source="test")


def test_cli_simulate_writes_csv(tmp_path):
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"heart_rate_bpm": 70}))
    scenario = tmp_path / "s.json"
    scenario.write_text(json.dumps({"duration_s": 2.5, **FAST}))
    out = tmp_path / "out.csv"
    args = ["simulate", "cardiovascular", "--params", str(params), "--scenario"]
    result = CliRunner().invoke(app, [*args, str(scenario), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert table.columns[0] == "time_s"
    assert {"p_ao_mmhg", "v_lv_ml", "q_aortic_ml_s"} <= set(table.columns)
    assert "mean_arterial_pressure_mmhg" in result.output

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"duration_s": 0}))
    out2 = tmp_path / "out2.csv"
    result = CliRunner().invoke(app, [*args, str(bad), "--out", str(out2)])
    assert result.exit_code == 2
    assert "duration_s" in result.output
    assert not out2.exists()
