"""Inputs: the parameter, scenario and device models, the input plan and the CLI."""

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
from medtwin_ml.solvers.diabetes import (
    TWIN,
    DiabetesDevice,
    DiabetesParameters,
    DiabetesScenario,
    Meal,
)
from medtwin_ml.solvers.diabetes._inputs import plan_inputs
from medtwin_ml.twin import Case

COLUMNS = [
    "time_min",
    "plasma_glucose_mg_dl",
    "subcutaneous_glucose_mg_dl",
    "plasma_insulin_pmol_l",
    "insulin_delivered_u",
    "carbs_eaten_g",
]


@pytest.fixture()
def files(tmp_path, adults):
    params = tmp_path / "p.json"
    params.write_text(adults[0].model_dump_json(exclude_none=True))
    scenario = tmp_path / "s.json"
    scenario.write_text(
        json.dumps(
            {
                "duration_min": 120,
                "meals": [{"time_min": 10, "carbs_g": 40}],
                "basal_u_per_h": 1.2,
                "boluses": [{"time_min": 10, "units": 3}],
            }
        )
    )
    return tmp_path, params, scenario


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_registered():
    assert get_twin("diabetes") is TWIN
    assert TWIN.cohorts == ("adult", "adolescent", "child", "korean_adult")


def test_cli_writes_one_row_per_minute_and_prints_outcomes(files):
    tmp, params, scenario = files
    out = tmp / "out.csv"
    result = _run(
        "simulate",
        "diabetes",
        "--params",
        params,
        "--scenario",
        scenario,
        "--out",
        out,
        "--cgm",
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert list(table.columns[:6]) == COLUMNS and "cgm_mg_dl" in table
    np.testing.assert_array_equal(table["time_min"], np.arange(121))
    assert table["carbs_eaten_g"].sum() == pytest.approx(40)
    assert table["carbs_eaten_g"].max() == pytest.approx(5)
    assert table["insulin_delivered_u"].sum() == pytest.approx(3 + 1.2 * 121 / 60)
    assert "time_in_range_pct" in result.output


def test_cli_closed_loop(files):
    tmp, params, scenario = files
    out = tmp / "loop.csv"
    result = _run(
        "simulate",
        "diabetes",
        "--params",
        params,
        "--scenario",
        scenario,
        "--out",
        out,
        "--controller",
        "basal_bolus",
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert {"cgm_mg_dl", "insulin_commanded_u"} <= set(table.columns)
    # The pump never delivers more than commanded, and the meal got a bolus.
    assert np.all(table["insulin_delivered_u"] <= table["insulin_commanded_u"] + 1e-12)
    assert table["insulin_delivered_u"][10] > 1.0


@pytest.mark.parametrize(
    ("which", "edit", "needle"),
    [
        ("scenario", lambda s: s["meals"][0].update(carbs_g=-5), "meals.0.carbs_g"),
        ("scenario", lambda s: s.update(duration_min=0), "duration_min"),
        ("scenario", lambda s: s.update(snacks=[]), "snacks"),
        ("params", lambda p: p.update(Vg=float("nan")), "NaN"),
        ("params", lambda p: p.update(insulin_type="lispro"), "insulin_type"),
        ("params", lambda p: p.update(BW=-70), "BW"),
    ],
)
def test_bad_input_names_the_key_and_writes_nothing(files, which, edit, needle):
    tmp, params, scenario = files
    path = params if which == "params" else scenario
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))  # NaN is written as the JSON token NaN
    out = tmp / "bad.csv"
    result = _run(
        "simulate", "diabetes", "--params", params, "--scenario", scenario, "--out", out
    )
    assert result.exit_code == 2
    assert needle in result.output
    assert not out.exists()


def test_published_table_row_validates_with_unused_keys_and_x0(adults):
    row = adults[0].model_dump(exclude_none=True)
    row.update({"x0_ 1": 0, "x0_ 2": 0, "x0_ 3": 0})
    row.update({f"x0_{k:2d}": 1.0 for k in range(4, 14)})
    p = validate_input(row, DiabetesParameters)
    assert p.initial_state().shape == (13,)
    partial = {**adults[0].model_dump(exclude_none=True), "x0_ 1": 0.0}
    with pytest.raises(ConfigError, match="partial"):
        validate_input(partial, DiabetesParameters)


def test_nan_in_parsed_input_names_the_key(adults):
    data = {**adults[0].model_dump(exclude_none=True), "Vg": float("nan")}
    with pytest.raises(ConfigError, match="Vg"):
        validate_input(data, DiabetesParameters)


def test_scenario_rules():
    with pytest.raises(ConfigError, match="first step"):
        validate_input(
            {"duration_min": 10, "basal_u_per_h": [{"time_min": 5, "u_per_h": 1}]},
            DiabetesScenario,
        )
    with pytest.raises(ConfigError, match="controller"):
        validate_input({"controller": "mpc2"}, DiabetesDevice)
    assert DiabetesDevice(controller="pid").cgm_settings() is not None
    assert DiabetesDevice().cgm_settings() is None


def test_plan_splits_events_across_minutes(adults):
    scenario = DiabetesScenario(
        duration_min=60,
        meals=[Meal(time_min=2.5, carbs_g=12)],
        eating_rate_g_per_min=4,
        boluses=[{"time_min": 10.25, "units": 2}],
        basal_u_per_h=[
            {"time_min": 0, "u_per_h": 0.6},
            {"time_min": 30.5, "u_per_h": 1.2},
        ],
    )
    plan = plan_inputs(adults[:1], [scenario], 61)
    # 12 g at 4 g/min from 2.5 to 5.5 min.
    np.testing.assert_allclose(plan.carbs_g[0, :7], [0, 0, 2, 4, 4, 2, 0])
    assert plan.dose_mg[0, 2] == 12000 and plan.dose_mg[0, 1] == adults[0].dosekempt
    assert plan.announced_g[0, 2] == 12
    bolus = plan.insulin_u[0] - np.where(np.arange(61) < 30, 0.01, 0.02)
    bolus[30] -= -0.005  # half a minute at each rate
    np.testing.assert_allclose(bolus[10:12], [1.5, 0.5])
    assert plan.insulin_u[0].sum() == pytest.approx(
        2 + 0.6 * 30.5 / 60 + 1.2 * 30.5 / 60
    )


@pytest.mark.parametrize("every", [2, 7, 10])
def test_coarse_inputs_are_the_means_of_the_minutes(adults, every):
    scenarios = [
        DiabetesScenario(
            duration_min=120,
            meals=[Meal(time_min=9.5, carbs_g=45), Meal(time_min=61.25, carbs_g=30)],
            eating_rate_g_per_min=4,
            boluses=[{"time_min": 9.5, "units": 4}, {"time_min": 69.75, "units": 1}],
            basal_u_per_h=[
                {"time_min": 0, "u_per_h": 0.6},
                {"time_min": 33.5, "u_per_h": 1.2},
            ],
        ),
        DiabetesScenario(
            duration_min=120,
            meals=[Meal(time_min=100.0, carbs_g=80)],  # runs past the horizon
            boluses=[{"time_min": 0.0, "units": 3}],
        ),
    ]
    cases = [
        Case(a, DiabetesDevice(), s) for a, s in zip(adults[:2], scenarios, strict=True)
    ]
    n = 112 // every
    fine = TWIN.exogenous_inputs(cases, n * every)
    coarse = TWIN.exogenous_inputs(cases, n, every=every)
    for name, values in fine.items():
        expected = values.reshape(len(cases), n, every).mean(axis=2)
        np.testing.assert_allclose(coarse[name], expected, rtol=1e-12, atol=1e-12)
        assert coarse[name].shape == (len(cases), n)
    # Not trivially zero: the meals and boluses are there.
    assert coarse["carbs_eaten_g"][0].sum() * every == pytest.approx(75)


@pytest.mark.parametrize("every", [1.0, 10.0])
def test_few_and_many_events_are_laid_out_alike(every):
    from medtwin_ml.solvers.diabetes._inputs import _lay_events, _lay_few_events

    rng = np.random.default_rng(5)
    events = [
        (int(rng.integers(3)), float(rng.uniform(0, 300)), float(w), float(a))
        for w, a in zip(
            rng.choice([1.0, 7.5, 12.0, 40.0], 60), rng.uniform(1, 90, 60), strict=True
        )
    ]
    looped, vectorised = np.zeros((3, 30)), np.zeros((3, 30))
    _lay_few_events(looped, every, events)
    _lay_events(vectorised, every, events)  # 60 events: the vectorised path
    np.testing.assert_allclose(looped, vectorised, rtol=1e-12, atol=1e-12)
    assert looped.sum() > 0


def test_batch_refuses_mixed_durations(adults):
    cases = [
        Case(adults[0], DiabetesDevice(), DiabetesScenario(duration_min=d))
        for d in (10, 20)
    ]
    with pytest.raises(ConfigError, match="one duration"):
        TWIN.simulate_batch(cases)
