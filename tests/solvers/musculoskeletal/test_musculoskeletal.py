from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from medtwin_ml.config import validate_input
from medtwin_ml.errors import ConfigError
from medtwin_ml.registry import get_twin
from medtwin_ml.solvers._integrate import rk4
from medtwin_ml.solvers.musculoskeletal import (
    TWIN,
    MusculoskeletalDevice,
    MusculoskeletalParameters,
    MusculoskeletalScenario,
    StimulationBurst,
    simulate,
    simulate_batch,
    verification,
)
from medtwin_ml.solvers.musculoskeletal import _muscle as mu
from medtwin_ml.twin import Case


def _case(pw=300.0, duration=1.0, exo=None, params=None, **device):
    scen = MusculoskeletalScenario(
        duration_s=duration,
        stimulation=[StimulationBurst(start_s=0.1, duration_s=0.6, pulse_width_us=pw)],
        exo_torque=exo or [],
    )
    return Case(
        params or MusculoskeletalParameters(), MusculoskeletalDevice(**device), scen
    )


def test_registered_and_verification_passes():
    assert get_twin("musculoskeletal") is TWIN
    checks = verification()
    assert {c.name for c in checks} >= {
        "hill_isometric_force_equals_a_f0",
        "activation_step_response",
        "pendulum_period_exact",
    }
    failed = [c for c in checks if not c.passed]
    assert failed == []


@pytest.mark.parametrize("a", [0.0, 0.25, 0.7, 1.0])
def test_hill_isometric_at_optimal_length_is_a_f0(a):
    f0 = 4321.0
    force = f0 * mu.hill_tendon_force(np.array(a), np.array(1.0), np.array(0.0))
    assert force == pytest.approx(a * f0, rel=1e-14, abs=1e-12)
    # Away from the optimal length the force is smaller: the check can fail.
    off = f0 * mu.hill_tendon_force(np.array(a), np.array(0.8), np.array(0.0))
    assert a == 0.0 or off < a * f0


def test_activation_step_matches_first_order_response():
    t = np.linspace(0.0, 0.1, 101)
    u = np.ones((1, 100, 1))
    a = rk4(
        lambda _t, y, uk: mu.activation_rate(uk, y, 0.015, 0.06),
        np.zeros((1, 1)),
        t,
        inputs=u,
        substeps=2,
    )[0, :, 0]
    # RK4 at h / tau = 1/30: global error ~ (h / tau)^4 / 120, below 1e-7.
    np.testing.assert_allclose(a, 1 - np.exp(-t / 0.015), atol=1e-7)


def test_rk4_converges_at_fourth_order():
    def rhs(_t, y, _u):
        return -y

    t = np.array([0.0, 1.0])
    errs = [
        abs(rk4(rhs, np.ones((1, 1)), t, substeps=n)[0, -1, 0] - np.exp(-1.0))
        for n in (8, 16)
    ]
    assert np.log2(errs[0] / errs[1]) == pytest.approx(4.0, abs=0.1)


def test_more_pulse_width_more_force_and_extension():
    peaks = simulate_batch([_case(pw) for pw in (0.0, 200.0, 400.0)]).summary
    assert np.all(np.diff(peaks["peak_extensor_force_n"]) > 0)
    assert np.all(np.diff(peaks["peak_angle_deg"]) > 0)
    # Unstimulated, the hanging shank stays within hundredths of a degree of rest.
    assert peaks["peak_angle_deg"].iloc[0] == pytest.approx(0.0, abs=0.05)


def test_exoskeleton_torque_lifts_the_shank():
    from medtwin_ml.solvers.musculoskeletal import ExoTorqueBlock

    exo = [ExoTorqueBlock(start_s=0.0, duration_s=1.0, torque_nm=5.0)]
    res = simulate_batch([_case(0.0, exo=exo)])
    angle = res.outputs["knee_angle_deg"][0]
    # 5 N m against m g d = 11.7 N m settles near asin(5 / 11.7) = 25 deg.
    assert 10.0 < angle.max() < 60.0
    np.testing.assert_allclose(res.outputs["exo_torque_nm"][0], 5.0)


def test_batch_equals_single_cases():
    cases = [
        _case(250.0),
        _case(100.0, params=MusculoskeletalParameters(extensor_max_force_n=3000.0)),
    ]
    batch = simulate_batch(cases)
    for i, case in enumerate(cases):
        one = simulate(case)
        for name, arr in batch.outputs.items():
            np.testing.assert_allclose(arr[i], one.table[name].to_numpy(), rtol=1e-12)
    assert one.table.columns[0] == "time_s"
    assert batch.outputs["knee_angle_deg"].shape == (2, 101)


def test_cohort_reproducible_and_strength_scaled():
    a = TWIN.sample_cohort("korean_adult", 5, 3)
    b = TWIN.sample_cohort("korean_adult", 5, 3)
    c = TWIN.sample_cohort("korean_adult", 5, 4)
    assert [p.model_dump() for p in a] == [p.model_dump() for p in b]
    assert [p.model_dump() for p in a] != [p.model_dump() for p in c]
    from medtwin_ml.cohorts.musculoskeletal import strength_factor

    assert strength_factor(30, "male", 75) == pytest.approx(1.0)
    assert strength_factor(70, "male", 75) == pytest.approx(0.7)
    assert strength_factor(30, "female", 75) == pytest.approx(0.75)
    young = TWIN.sample_cohort("korean_adult", 40, 0)
    old = TWIN.sample_cohort("korean_older_adult", 40, 0)
    mean_force = [np.mean([p.extensor_max_force_n for p in g]) for g in (young, old)]
    assert mean_force[1] < mean_force[0]


def test_cases_from_design_and_domain():
    design = TWIN.input_domain.sample(3, seed=1)
    patients = TWIN.sample_cohort("korean_adult", 3, 1)
    cases = TWIN.cases_from_design(design, patients, {"duration_s": 1.0})
    assert len(cases) == 3
    assert cases[1].params is patients[1]
    assert (
        cases[2].scenario.stimulation[0].pulse_width_us
        == design.iloc[2]["pulse_width_us"]
    )
    with pytest.raises(ValueError, match="unknown options"):
        TWIN.cases_from_design(design, patients, {"duration_min": 1})
    with pytest.raises(ValueError, match="rows but"):
        TWIN.cases_from_design(design, patients[:2], {})


@pytest.mark.parametrize(
    ("model", "data", "key"),
    [
        (MusculoskeletalDevice, {"amplitude_ma": -1}, "amplitude_ma"),
        (MusculoskeletalDevice, {"frequency_hz": float("nan")}, "frequency_hz"),
        (MusculoskeletalDevice, {"cgm": True}, "cgm"),
        (
            MusculoskeletalParameters,
            {"extensor_max_force_n": 0},
            "extensor_max_force_n",
        ),
        (
            MusculoskeletalScenario,
            {"stimulation": [{"start_s": 0, "duration_s": 1, "pulse_width_us": 2000}]},
            "stimulation.0.pulse_width_us",
        ),
    ],
)
def test_bad_input_names_the_key(model, data, key):
    with pytest.raises(ConfigError) as info:
        validate_input(data, model, source="test")
    assert key in str(info.value)


def test_cross_field_errors_are_clear():
    with pytest.raises(ConfigError, match="fiber_damping"):
        validate_input(
            {"extensor_fiber_damping": 0.05, "extensor_vmax_lopt_per_s": 20},
            MusculoskeletalParameters,
        )
    with pytest.raises(ConfigError, match="not before duration_s"):
        validate_input(
            {
                "duration_s": 1,
                "stimulation": [{"start_s": 2, "duration_s": 1, "pulse_width_us": 100}],
            },
            MusculoskeletalScenario,
        )
    with pytest.raises(ValueError, match="must share"):
        simulate_batch([_case(duration=1.0), _case(duration=0.5)])


def test_stiffest_allowed_fiber_stays_stable():
    p = MusculoskeletalParameters(
        extensor_fiber_damping=0.075,
        extensor_tendon_slack_length_m=0.144,
        extensor_vmax_lopt_per_s=10.0,
    )
    out = simulate_batch([_case(400.0, params=p)]).outputs
    assert np.all(np.isfinite(out["extensor_force_n"]))
    assert out["extensor_force_n"].max() < 2.0 * p.extensor_max_force_n


def test_cli_simulate_writes_csv(tmp_path):
    from typer.testing import CliRunner

    from medtwin_ml.cli import app

    (tmp_path / "p.json").write_text("{}")
    (tmp_path / "s.json").write_text(json.dumps({"duration_s": 1.0}))
    out = tmp_path / "out.csv"
    res = CliRunner().invoke(
        app,
        [
            "simulate",
            "musculoskeletal",
            "--params",
            str(tmp_path / "p.json"),
            "--scenario",
            str(tmp_path / "s.json"),
            "--out",
            str(out),
            "--seed",
            "3",
        ],
    )
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    assert list(table.columns[:2]) == ["time_s", "knee_angle_deg"]
    assert len(table) == 101
