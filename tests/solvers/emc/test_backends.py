"""numpy and torch backends run one code path and agree to float32 rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medtwin_ml.config import validate_input
from medtwin_ml.solvers.emc import EmcScenario, EmcScene, EmcSolverSettings, simulate
from medtwin_ml.twin import Case

SCENE = {
    "domain_m": [0.2, 0.15],
    "cell_m": 0.006,
    "objects": [
        {
            "shape": "circle",
            "material": "fat",
            "center_m": [0.1, 0.07],
            "radius_m": 0.03,
        },
        {
            "shape": "rectangle",
            "material": "copper",
            "min_m": [0.03, 0.02],
            "max_m": [0.05, 0.12],
        },
    ],
}


@pytest.mark.parametrize("polarization", ["TMz", "TEz"])
def test_torch_matches_numpy(polarization):
    scene = validate_input(SCENE, EmcScene)
    scen = validate_input(
        {
            "source": "plane_wave",
            "frequency_hz": 9e8,
            "direction_deg": 35,
            "polarization": polarization,
        },
        EmcScenario,
    )
    ref = simulate(Case(scene, EmcSolverSettings(backend="numpy"), scen)).arrays
    got = simulate(Case(scene, EmcSolverSettings(backend="torch"), scen)).arrays
    main = "ez" if polarization == "TMz" else "hz"
    scale = np.abs(ref[main]).max()
    # float32 carries 6e-8 relative rounding per operation; over a few thousand
    # steps it measured 4e-7 of the peak here, so 1e-5 leaves a factor 25.
    assert np.abs(got[main] - ref[main]).max() / scale < 1e-5
    assert np.abs(got[main] - ref[main]).max() / scale > 0  # two real computations


def test_torch_device_auto_takes_cuda_when_present():
    from medtwin_ml.solvers.emc._backends import make_backend

    bk = make_backend("torch", device="auto")
    assert bk.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert bk.zeros((2, 2)).dtype == torch.float32
    with pytest.raises(ValueError, match="CPU only"):
        make_backend("numpy", device="cuda")


@pytest.mark.parametrize("mode", ["TMz", "TEz"])
def test_numba_kernels_match_the_array_path(mode):
    # Same float64 arithmetic in another order: agreement to rounding (1e-12).
    from medtwin_ml.solvers.emc._cpml import CpmlProfile
    from medtwin_ml.solvers.emc._engine import Fdtd, Waveform

    rng = np.random.default_rng(5)
    n = 48
    eps = 1 + 3 * rng.random((n, n))
    sig = 0.1 * rng.random((n, n))
    pec = rng.random((n, n)) < 0.02
    fields = {}
    for backend in ("numpy", "numba"):
        sim = Fdtd(
            mode, eps, sig, pec, cell_m=0.005, dt_s=1.1e-11, cpml=CpmlProfile(8),
            omega_ref=2 * np.pi * 1e9, backend=backend, precision="float64",
            threads=2,
        )  # fmt: skip
        sim.add_plane_wave(
            Waveform(1e9, "cw", ramp_s=2e-9), 1.0, (0.6, 0.8), [(12, 36)] * 2, (12, 12)
        )
        sim.step(200)
        fields[backend] = {k: sim.get_field(k) for k in sim.fields}
    for name, ref in fields["numpy"].items():
        got = fields["numba"][name]
        assert np.abs(ref).max() > 0
        assert np.abs(got - ref).max() <= 1e-12 * np.abs(ref).max(), name
