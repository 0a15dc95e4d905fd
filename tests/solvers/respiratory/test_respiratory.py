from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from medtwin_ml.cli import app
from medtwin_ml.config import validate_input
from medtwin_ml.errors import ConfigError
from medtwin_ml.registry import get_twin
from medtwin_ml.solvers.respiratory import (
    TWIN,
    RespiratoryDevice,
    RespiratoryParameters,
    RespiratoryScenario,
    cases_from_design,
    closed_form_volume_control,
    sample_cohort,
    simulate,
    simulate_batch,
    verification,
)
from medtwin_ml.twin import Case

# Breath timings below are whole numbers of the 5 ms step, so the closed forms hold
# to rounding (see medtwin_ml/solvers/respiratory/_verification.py): 1e-8 cmH2O.
TOL = 1e-8


def _one(r=8.0, c=50.0):
    return RespiratoryParameters(
        airway_resistance_cmh2o_s_per_l=r,
        resistance_1_cmh2o_s_per_l=0.0,
        compliance_1_ml_per_cmh2o=c,
    )


def test_registered_and_verification_passes():
    assert get_twin("respiratory") is TWIN
    checks = verification()
    assert len(checks) == 8
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]


@pytest.mark.parametrize(
    ("r", "c", "peep", "vt"), [(8.0, 50.0, 5.0, 500.0), (15.0, 30.0, 10.0, 400.0)]
)
def test_volume_control_peak_and_plateau_closed_form(r, c, peep, vt):
    # rate 12/min, I:E 1:2 with a 0.3 s pause: T 5 s, flow 1.3667 s, Te 3.333 s.
    device = RespiratoryDevice(
        peep_cmh2o=peep,
        rate_per_min=12.0,
        ie_ratio=0.5,
        tidal_volume_ml=vt,
        inspiratory_pause_s=0.3,
    )
    res = simulate(Case(_one(r, c), device, RespiratoryScenario(duration_s=30.0)))
    n_insp = round(1000 * 0.5 / 1.5)  # steps of inspiration, rounded by the device
    ti = n_insp * 0.005
    expected = closed_form_volume_control(r, c, peep, vt, ti - 0.3, 5.0 - ti)
    for key, value in expected.items():
        assert res.summary[key] == pytest.approx(value, abs=TOL), key
    assert res.summary["tidal_volume_ml"] == pytest.approx(vt, rel=1e-12)
    # The measured airway pressure at the end of the pause equals the plateau.
    table = res.table
    assert table["airway_pressure_cmh2o"].max() == pytest.approx(
        expected["peak_pressure_cmh2o"], abs=0.05
    )


def test_pressure_control_volume_follows_rc_exponential():
    r, c, dp = 6.0, 30.0, 12.0
    device = RespiratoryDevice(
        mode="pressure_control", inspiratory_pressure_cmh2o=dp, rate_per_min=10.0
    )
    res = simulate(Case(_one(r, c), device, RespiratoryScenario(duration_s=2.0)))
    t = res.table["time_s"].to_numpy()
    v = res.table["volume_ml"].to_numpy()
    tau = r * c / 1000.0
    inside = t <= 2.0
    exact = c * dp * (1.0 - np.exp(-t[inside] / tau))
    # RK4 at dt / tau = 1/36: relative error of exp below 1e-9 over the window.
    np.testing.assert_allclose(v[inside], exact, rtol=1e-7, atol=1e-9)


def test_short_expiration_gives_auto_peep_and_long_does_not():
    cases = [
        Case(
            _one(20.0, 60.0),
            RespiratoryDevice(rate_per_min=rate, ie_ratio=0.5),
            RespiratoryScenario(duration_s=25.0),
        )
        for rate in (30.0, 5.0)
    ]
    fast, slow = simulate_batch(cases).summary["auto_peep_cmh2o"]
    # tau = 1.2 s: Te 1.33 s (30/min) is about 1.1 tau, Te 8 s (5/min) is 6.7 tau.
    assert fast > 1.0
    assert slow < 0.02


def test_spontaneous_effort_adds_volume_in_pressure_control():
    device = RespiratoryDevice(mode="pressure_control")
    passive = RespiratoryScenario(duration_s=8.0)
    active = RespiratoryScenario(
        duration_s=8.0, effort_pressure_cmh2o=8.0, effort_rate_per_min=15.0
    )
    out = simulate_batch([Case(_one(), device, s) for s in (passive, active)])
    vt = out.summary["tidal_volume_ml"].to_numpy()
    assert vt[1] > vt[0] + 50.0
    assert np.all(out.outputs["muscle_pressure_cmh2o"][0] == 0.0)
    assert out.outputs["muscle_pressure_cmh2o"][1].max() == pytest.approx(8.0, abs=0.1)


def test_batch_is_independent_of_batch_membership():
    cases = [
        Case(p, RespiratoryDevice(mode=m), RespiratoryScenario(duration_s=6.0))
        for p, m in zip(
            sample_cohort("copd", 3, seed=1),
            ["volume_control", "pressure_control", "volume_control"],
            strict=True,
        )
    ]
    together = simulate_batch(cases)
    alone = simulate(cases[1])
    np.testing.assert_array_equal(
        together.outputs["airway_pressure_cmh2o"][1],
        alone.table["airway_pressure_cmh2o"].to_numpy(),
    )
    assert together.outputs["volume_ml"].shape == (3, 301)
    assert alone.table.columns[0] == "time_s"


def test_cohorts_are_seeded_and_in_published_ranges():
    a = sample_cohort("ards", 20, seed=5)
    assert a == sample_cohort("ards", 20, seed=5)
    assert a != sample_cohort("ards", 20, seed=6)
    assert all(20 <= p.compliance_1_ml_per_cmh2o <= 40 for p in a)
    copd = sample_cohort("copd", 20, seed=5)
    assert all(15 <= p.airway_resistance_cmh2o_s_per_l <= 25 for p in copd)
    with pytest.raises(ValueError, match="expected one of normal, ards, copd"):
        sample_cohort("asthma", 2, 0)


def test_cases_from_design_pairs_rows_with_patients():
    design = TWIN.input_domain.sample(4, seed=2)
    patients = sample_cohort("normal", 4, seed=2)
    cases = cases_from_design(
        design, patients, {"mode": "pressure_control", "duration_s": 16.0}
    )
    assert [c.params for c in cases] == patients
    assert cases[2].device.peep_cmh2o == pytest.approx(design["peep_cmh2o"][2])
    assert all(c.device.mode == "pressure_control" for c in cases)
    # 16 s hold at least one complete breath at the slowest rate, 8/min.
    assert simulate_batch(cases).summary.notna().all().all()
    with pytest.raises(ConfigError, match="duration_min"):
        cases_from_design(design, patients, {"duration_min": 5})


@pytest.mark.parametrize(
    ("model", "data", "key"),
    [
        (RespiratoryParameters, {"compliance_1_ml_per_cmh2o": -5}, "compliance_1"),
        (RespiratoryParameters, {"resistance": 5}, "resistance"),
        (
            RespiratoryParameters,
            {"n_compartments": 2, "resistance_2_cmh2o_s_per_l": 0},
            "both positive",
        ),
        (RespiratoryDevice, {"peep_cmh2o": float("nan")}, "peep_cmh2o"),
        (RespiratoryDevice, {"mode": "cpap"}, "mode"),
        (RespiratoryDevice, {"inspiratory_pause_s": 1.5}, "inspiratory time"),
        (RespiratoryScenario, {"duration_s": 0}, "duration_s"),
        (RespiratoryScenario, {"output_interval_s": 0.007}, "whole multiple"),
    ],
)
def test_bad_input_is_refused_with_the_key(model, data, key):
    with pytest.raises(ConfigError, match=key):
        validate_input(data, model, source="test")


def test_cli_simulate_writes_csv(tmp_path):
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"compliance_1_ml_per_cmh2o": 40}))
    scenario = tmp_path / "s.json"
    scenario.write_text(json.dumps({"duration_s": 8}))
    device = tmp_path / "d.json"
    device.write_text(json.dumps({"mode": "pressure_control"}))
    out = tmp_path / "out.csv"
    args = ["simulate", "respiratory", "--params", str(params), "--scenario"]
    result = CliRunner().invoke(
        app, [*args, str(scenario), "--device", str(device), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert list(table.columns) == [
        "time_s",
        "airway_pressure_cmh2o",
        "flow_l_s",
        "volume_ml",
        "muscle_pressure_cmh2o",
    ]
    assert "peak_pressure_cmh2o" in result.output

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"compliance_1_ml_per_cmh2o": 0}))
    out2 = tmp_path / "out2.csv"
    result = CliRunner().invoke(
        app, [*args, str(scenario), "--params", str(bad), "--out", str(out2)]
    )
    assert result.exit_code == 2
    assert "compliance_1_ml_per_cmh2o" in result.output
    assert not out2.exists()
