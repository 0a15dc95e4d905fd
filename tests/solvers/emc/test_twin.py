"""The emc twin end to end: CLI output, probes, SAR, IEC tests, bad scenes, families."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from medtwin_ml.cli import app
from medtwin_ml.config import validate_input
from medtwin_ml.errors import ConfigError
from medtwin_ml.registry import get_twin
from medtwin_ml.solvers.emc import (
    EmcScenario,
    EmcScene,
    EmcSolverSettings,
    exposures,
    sample_scenes,
)
from medtwin_ml.solvers.emc._engine import Fdtd
from medtwin_ml.twin import Case

F = 1e9
LAM = 0.299792458


def _scene(**kw):
    data = {"domain_m": [0.3, 0.2], "cell_m": LAM / 20}
    data.update(kw)
    return validate_input(data, EmcScene, "scene")


def _wave(**kw):
    data = {"source": "plane_wave", "frequency_hz": F, "amplitude_v_per_m": 2.0}
    data.update(kw)
    return validate_input(data, EmcScenario, "scenario")


@pytest.mark.parametrize("polarization", ["TMz", "TEz"])
def test_cli_writes_fields_and_empty_domain_gives_the_amplitude(tmp_path, polarization):
    params = tmp_path / "scene.json"
    scen = tmp_path / "scenario.json"
    out = tmp_path / "field.npz"
    params.write_text(
        json.dumps(
            {
                "domain_m": [0.3, 0.2],
                "cell_m": LAM / 20,
                "probes": {
                    "sensor_ic": {"point_m": [0.15, 0.1], "threshold_v_per_m": 4.0}
                },
            }
        )
    )
    scen.write_text(
        json.dumps(
            {
                "source": "plane_wave",
                "frequency_hz": F,
                "amplitude_v_per_m": 2.0,
                "direction_deg": 20.0,
                "polarization": polarization,
            }
        )
    )
    res = CliRunner().invoke(
        app,
        [
            "simulate",
            "emc",
            "--params",
            str(params),
            "--scenario",
            str(scen),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    with np.load(out) as npz:
        data = dict(npz)
    nx, ny = 20, 13
    assert data["x_m"].shape == (nx,) and data["y_m"].shape == (ny,)
    assert data["x_m"][0] == pytest.approx(LAM / 40)
    names = ("ez", "hx", "hy") if polarization == "TMz" else ("hz", "ex", "ey")
    for name in names:
        assert data[name].shape == (nx, ny) and np.iscomplexobj(data[name])
    e_abs = data["e_abs_v_per_m"]
    # ez sits at cell centres; ex, ey are averaged there from two faces, which
    # scales a wave by cos(k dx / 2) >= cos(pi / 20) = 0.988 at 20 cells/wavelength.
    np.testing.assert_allclose(
        e_abs, 2.0, rtol=1e-3 if polarization == "TMz" else 0.013
    )
    # |H| = |E| / eta0 for a plane wave in vacuum.
    h = (
        data["hz"]
        if polarization == "TEz"
        else np.hypot(np.abs(data["hx"]), np.abs(data["hy"]))
    )
    np.testing.assert_allclose(np.abs(h), 2.0 / 376.73, rtol=2e-2)
    # 20 log10(4 / 2) = 6.02 dB of margin at the probe.
    assert data["probe_margin_db"][0] == pytest.approx(6.0206, abs=0.12)
    assert str(data["probe_names"][0]) == "sensor_ic"


def test_sar_and_probe_region_on_tissue():
    scene = _scene(
        objects=[
            {
                "shape": "rectangle",
                "material": "muscle",
                "min_m": [0.05, 0.02],
                "max_m": [0.25, 0.06],
            }
        ],
        probes={
            "box": {
                "min_m": [0.05, 0.02],
                "max_m": [0.25, 0.06],
                "threshold_v_per_m": 1.0,
            }
        },
        cell_m=LAM / 80,
    )
    res = get_twin("emc").simulate(
        Case(scene, EmcSolverSettings(), _wave(direction_deg=-90.0))
    )
    a = res.arrays
    sar = a["sar_w_per_kg"]
    tissue = a["eps_r"] > 10
    assert (sar[~tissue] == 0).all() and (sar[tissue] > 0).all()
    sigma = a["sigma_s_per_m"][tissue]
    np.testing.assert_allclose(
        sar[tissue], sigma * a["e_abs_v_per_m"][tissue] ** 2 / (2 * 1090.0)
    )
    assert 0 < a["psar_10g_w_per_kg"] <= a["psar_1g_w_per_kg"] <= sar.max()
    assert a["probe_e_v_per_m"][0] == pytest.approx(
        a["e_abs_v_per_m"][tissue].max(), rel=1e-9
    )
    assert res.summary["immunity_pass"] == bool(a["probe_margin_db"][0] >= 0)


def test_iec_scenarios_expand_into_their_frequencies_and_levels():
    prox = exposures(
        validate_input(
            {"source": "iec_60601_proximity", "band_mhz": "810-930"}, EmcScenario
        )
    )
    assert [e.frequency_hz for e in prox] == [810e6, 870e6, 930e6]
    assert prox[0].amplitude_v_per_m == pytest.approx(28 * np.sqrt(2))
    rad = exposures(
        validate_input(
            {"source": "iec_60601_radiated", "level_v_per_m": 3, "n_frequencies": 3},
            EmcScenario,
        )
    )
    assert [round(e.frequency_hz) for e in rad] == [
        80_000_000,
        round(np.sqrt(80e6 * 2.7e9)),
        2_700_000_000,
    ]
    assert rad[0].amplitude_v_per_m == pytest.approx(3 * np.sqrt(2) * 1.8)
    with pytest.raises(ConfigError, match="level_v_per_m"):
        validate_input(
            {"source": "iec_60601_radiated", "level_v_per_m": 5}, EmcScenario
        )


def test_iec_run_stacks_frequencies():
    scene = _scene(domain_m=[0.1, 0.1], cell_m=0.005)
    scen = validate_input(
        {"source": "iec_60601_proximity", "band_mhz": "710-780"}, EmcScenario
    )
    res = get_twin("emc").simulate(Case(scene, EmcSolverSettings(), scen))
    assert res.arrays["ez"].shape == (3, 20, 20)
    np.testing.assert_allclose(res.arrays["e_abs_v_per_m"], 9 * np.sqrt(2), rtol=2e-3)


@pytest.fixture()
def no_stepping(monkeypatch):
    def refuse(self, n_steps=1):
        raise AssertionError("time stepping started")

    monkeypatch.setattr(Fdtd, "step", refuse)


def test_cell_too_coarse_is_refused_before_stepping(no_stepping):
    scene = _scene(
        cell_m=0.01,
        objects=[
            {
                "shape": "circle",
                "material": "muscle",
                "center_m": [0.15, 0.1],
                "radius_m": 0.03,
            }
        ],
    )
    with pytest.raises(ConfigError, match="cell_m") as info:
        get_twin("emc").simulate(Case(scene, EmcSolverSettings(), _wave()))
    assert "cells per wavelength" in str(info.value)


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        (
            {
                "shape": "circle",
                "material": "fat",
                "center_m": [0.29, 0.1],
                "radius_m": 0.02,
            },
            "outside the domain",
        ),
        (
            {
                "shape": "rectangle",
                "material": "unobtanium",
                "min_m": [0.1, 0.1],
                "max_m": [0.2, 0.15],
            },
            "unknown material 'unobtanium'",
        ),
        (
            {
                "shape": "polygon",
                "eps_r": 2.0,
                "vertices_m": [[0, 0], [0.31, 0], [0.1, 0.1]],
            },
            "outside the domain",
        ),
    ],
)
def test_bad_scenes_get_clear_errors(obj, match):
    with pytest.raises(ConfigError, match=match) as info:
        _scene(objects=[obj])
    assert "objects" in str(info.value)


def test_families_sample_reproducibly_and_batch():
    spec = get_twin("emc")
    assert spec.cohorts == ("enclosure", "body_worn")
    a = spec.sample_cohort("body_worn", 2, 7)
    assert a == spec.sample_cohort("body_worn", 2, 7)
    assert a != spec.sample_cohort("body_worn", 2, 8)
    enclosures = sample_scenes("enclosure", 3, 1)
    assert len({(s.domain_m, s.cell_m) for s in enclosures}) == 1
    assert len({s.model_dump_json() for s in enclosures}) == 3
    design = spec.input_domain.sample(2, seed=3)
    scenes = [s.model_copy(update={"cell_m": 0.003}) for s in a]
    cases = spec.cases_from_design(
        design.assign(frequency_hz=[4e8, 6e8]), scenes, {"solver": {"max_periods": 40}}
    )
    batch = spec.simulate_batch(cases)
    assert batch.coords["x_m"].shape == (40,) and batch.coords["y_m"].shape == (20,)
    assert batch.outputs["ez_abs_v_per_m"].shape == (2, 40, 20)
    assert (batch.outputs["sar_w_per_kg"] >= 0).all()
    assert batch.outputs["sar_w_per_kg"].max() > 0
    assert list(batch.summary["frequency_hz"]) == [4e8, 6e8]


def test_loading_the_twin_does_not_import_torch():
    code = (
        "import sys, medtwin_ml\nfrom medtwin_ml.registry import get_twin\n"
        "get_twin('emc').describe()\nprint('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
