from __future__ import annotations

import json

import numpy as np
import pytest

from medtwin_ml.config import validate_input
from medtwin_ml.errors import ConfigError
from medtwin_ml.registry import get_twin
from medtwin_ml.solvers.skin import (
    TWIN,
    SkinDevice,
    SkinParameters,
    SkinScenario,
    simulate,
    simulate_batch,
    verification,
)
from medtwin_ml.solvers.skin._verify import _step_error, check_arrhenius_constant
from medtwin_ml.twin import Case

QUICK = {"duration_s": 20.0, "time_step_s": 0.1, "output_interval_s": 2.0}


def test_registered_and_verification_passes():
    assert get_twin("skin") is TWIN
    checks = verification()
    names = {c.name for c in checks}
    assert {
        "step_temperature_erfc",
        "perfusion_decay_length",
        "arrhenius_constant_temperature",
    } <= names
    assert [c for c in checks if not c.passed] == []


def test_step_error_halves_twice_per_refinement():
    # Second order in space and time: halving both cuts the error about 4x.
    coarse, fine = _step_error(40.0, 0.02), _step_error(20.0, 0.01)
    assert 3.5 < coarse / fine < 4.5
    assert fine < 5e-4


def test_arrhenius_at_constant_temperature_is_exact():
    check = check_arrhenius_constant()
    assert check.passed and check.measured < 1e-9


def test_hotter_contact_heats_and_damages_more():
    cases = [
        Case(
            SkinParameters(),
            SkinDevice(contact_temperature_c=tc),
            SkinScenario(**QUICK),
        )
        for tc in (42.0, 46.0, 50.0)
    ]
    s = simulate_batch(cases).summary
    assert np.all(np.diff(s["max_temperature_dermis_c"]) > 0)
    assert np.all(np.diff(s["max_damage_epidermis"]) > 0)
    # Held at 42 C the surface passes 41 C at once and never 43 C.
    assert s["time_to_41c_s"].iloc[0] == 0.0
    assert np.isnan(s["time_to_43c_s"].iloc[0])


def test_flux_reaches_limits_in_order_and_cools_after():
    dev = SkinDevice(mode="flux", surface_flux_w_per_m2=8000.0, heating_duration_s=10.0)
    res = simulate_batch([Case(SkinParameters(), dev, SkinScenario(**QUICK))])
    s = res.summary.iloc[0]
    assert 0.0 < s["time_to_41c_s"] < s["time_to_43c_s"] < 10.0
    surface = res.outputs["surface_temperature_c"][0]
    assert surface.argmax() == 5  # the last output while heating, t = 10 s
    assert surface[-1] < surface.max() - 2.0


def test_axisymmetric_field_shapes_and_radial_decay():
    scen = SkinScenario(
        **QUICK, geometry="axisymmetric", domain_radius_mm=10.0, n_radial=10
    )
    dev = SkinDevice(mode="rf", sar_w_per_kg=2000.0, applicator_radius_mm=3.0)
    res = simulate(Case(SkinParameters(), dev, scen))
    temp = res.arrays["temperature_c"]
    assert temp.shape == (11, res.arrays["depth_m"].size, 10)
    # Hottest under the applicator, cooler far from it.
    assert temp[-1, 5, 0] > temp[-1, 5, -1] + 1.0


def test_batch_matches_single_and_cohort_is_seeded():
    patients = TWIN.sample_cohort("adult", 2, seed=5)
    again = TWIN.sample_cohort("adult", 2, seed=5)
    assert [p.model_dump() for p in patients] == [p.model_dump() for p in again]
    older = TWIN.sample_cohort("older_adult", 30, seed=5)
    adults = TWIN.sample_cohort("adult", 30, seed=5)
    assert np.mean([p.dermis_thickness_mm for p in older]) < np.mean(
        [p.dermis_thickness_mm for p in adults]
    )
    design = TWIN.input_domain.sample(2, seed=0)
    cases = TWIN.cases_from_design(design, patients, QUICK)
    batch = simulate_batch(cases)
    one = simulate(cases[1])
    np.testing.assert_allclose(
        batch.outputs["temperature_c"][1], one.arrays["temperature_c"], rtol=1e-12
    )
    assert batch.summary.shape[0] == 2


@pytest.mark.parametrize(
    ("model", "data", "key"),
    [
        (SkinDevice, {"mode": "laser"}, "mode"),
        (SkinDevice, {"reflectance": 1.0}, "reflectance"),
        (SkinParameters, {"dermis_thickness_mm": -1}, "dermis_thickness_mm"),
        (SkinScenario, {"duration_s": 10, "time_step_s": 0.3}, "time_step_s"),
        (SkinScenario, {"geometry": "3d"}, "geometry"),
    ],
)
def test_bad_input_names_the_key(model, data, key):
    with pytest.raises(ConfigError) as info:
        validate_input(data, model, source="test")
    assert key in str(info.value)


def test_batch_errors_are_clear():
    a = Case(SkinParameters(), SkinDevice(), SkinScenario(**QUICK))
    b = Case(
        SkinParameters(), SkinDevice(), SkinScenario(**(QUICK | {"duration_s": 10}))
    )
    with pytest.raises(ValueError, match="must share the grid"):
        simulate_batch([a, b])
    thick = SkinParameters(subcutis_thickness_mm=30.0)
    with pytest.raises(ValueError, match="domain_depth_mm"):
        simulate_batch(
            [Case(thick, SkinDevice(), SkinScenario(**QUICK, domain_depth_mm=20.0))]
        )


def test_cli_simulate_writes_npz(tmp_path):
    from typer.testing import CliRunner

    from medtwin_ml.cli import app

    (tmp_path / "p.json").write_text("{}")
    (tmp_path / "s.json").write_text(json.dumps(QUICK))
    out = tmp_path / "out.npz"
    res = CliRunner().invoke(
        app,
        [
            "simulate",
            "skin",
            "--params",
            str(tmp_path / "p.json"),
            "--scenario",
            str(tmp_path / "s.json"),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    with np.load(out) as data:
        assert data["temperature_c"].shape == (11, data["depth_m"].size)
