"""From a scene and one exposure to total-field phasors on the domain's cells."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from medtwin_ml.config import BoundaryModel
from medtwin_ml.errors import ConfigError
from medtwin_ml.solvers.emc._cpml import CpmlProfile, courant_dt
from medtwin_ml.solvers.emc._engine import Fdtd, Waveform
from medtwin_ml.solvers.emc._materials import C0_M_PER_S, wavelength_m
from medtwin_ml.solvers.emc._scenario import Exposure
from medtwin_ml.solvers.emc._scene import EmcScene, rasterize

__all__ = ["EmcSolverSettings", "FieldSolution", "check_resolution", "solve_exposure"]

logger = logging.getLogger(__name__)

_SF_CELLS = 3  # scattered-field cells between the TF/SF box and the CPML
_TF_PAD = 2  # total-field cells between the domain and the TF/SF box


class EmcSolverSettings(BoundaryModel):
    """Solver settings (``--device``): backend, resolution check, steady state."""

    backend: Literal["numpy", "torch", "numba"] = Field(
        "numpy", description="numpy (reference), torch, or numba (fast CPU)."
    )
    device: Literal["cpu", "cuda", "auto"] = Field(
        "cpu", description="Where torch runs; 'auto' takes CUDA when present."
    )
    precision: Literal["auto", "float32", "float64"] = Field(
        "auto", description="auto: float64 for numpy, float32 for torch and numba."
    )
    threads: int = Field(
        1,
        ge=1,
        le=256,
        description="Threads of the numba kernels. One is the default: on a shared "
        "two-core machine one thread measured faster than two.",
    )
    min_cells_per_wavelength: float = Field(
        10.0, ge=4.0, description="Least cells per wavelength in the densest material."
    )
    courant_fraction: float = Field(
        0.99, gt=0.0, le=1.0, description="Time step as a fraction of the limit."
    )
    cpml_cells: int = Field(12, ge=4, le=64, description="CPML thickness, cells.")
    ramp_periods: float = Field(3.0, ge=0.5, description="Source switch-on, periods.")
    settle_periods: float = Field(
        2.0, ge=0.0, description="Periods after the ramp has crossed the grid."
    )
    dft_periods: int = Field(2, ge=1, le=100, description="Periods per DFT window.")
    max_periods: int = Field(
        200, ge=4, description="Give up on steady state after this many periods."
    )
    steady_state_tol: float = Field(
        1e-3, gt=0.0, lt=1.0, description="Relative change between DFT windows."
    )
    seed: int = Field(
        0, description="Accepted for the CLI; the solver is deterministic (unused)."
    )


@dataclass
class FieldSolution:
    """Total-field phasors on the domain cells for one exposure.

    ``fields``: complex arrays (nx, ny) at cell centres: ``ez, hx, hy`` (TMz) or
    ``hz, ex, ey`` (TEz), in V/m and A/m. ``e_abs``: peak |E| (nx, ny) in V/m.
    """

    fields: dict[str, np.ndarray]
    e_abs: np.ndarray
    maps: dict[str, np.ndarray]
    steps: int
    periods: float
    converged: bool
    change: float
    cell_updates_per_s: float


def check_resolution(scene: EmcScene, frequency_hz: float, min_cpw: float) -> None:
    """Refuse a cell too coarse for the frequency and the densest material."""
    maps = rasterize(scene, frequency_hz)
    ok = ~maps["pec"]
    eps = np.append(maps["eps_r"][ok], scene.background.eps_r)
    sig = np.append(maps["sigma_s_per_m"][ok], scene.background.sigma_s_per_m)
    pairs = set(zip(eps.tolist(), sig.tolist(), strict=True))
    lam = min(wavelength_m(e, s, frequency_hz) for e, s in pairs)
    cpw = lam / scene.cell_m
    if cpw < min_cpw:
        raise ConfigError(
            "scene",
            [
                (
                    "cell_m",
                    scene.cell_m,
                    f"at most {lam / min_cpw:.4g} m: the shortest wavelength at "
                    f"{frequency_hz:g} Hz is {lam:.4g} m, which needs "
                    f"{min_cpw:g} cells per wavelength (this cell gives {cpw:.3g})",
                )
            ],
        )


def solve_exposure(
    scene: EmcScene, exposure: Exposure, settings: EmcSolverSettings
) -> FieldSolution:
    """Run one continuous-wave plane-wave exposure to steady state."""
    f = exposure.frequency_hz
    omega = 2.0 * math.pi * f
    m = settings.cpml_cells
    nd = scene.n_cells
    i0 = 1 + m + _SF_CELLS + _TF_PAD
    shape = tuple(n + 2 * i0 for n in nd)

    maps = rasterize(scene, f)
    bg = scene.background
    eps = np.full(shape, bg.eps_r)
    sig = np.full(shape, bg.sigma_s_per_m)
    pec = np.zeros(shape, dtype=bool)
    dom = tuple(slice(i0, i0 + n) for n in nd)
    eps[dom], sig[dom], pec[dom] = maps["eps_r"], maps["sigma_s_per_m"], maps["pec"]

    # An integer number of steps per period makes the DFT window exact.
    period = 1.0 / f
    spp = math.ceil(period / courant_dt(scene.cell_m, 2, settings.courant_fraction))
    dt = period / spp
    sim = Fdtd(
        exposure.polarization,
        eps,
        sig,
        pec,
        cell_m=scene.cell_m,
        dt_s=dt,
        cpml=CpmlProfile(cells=m),
        omega_ref=omega,
        backend=settings.backend,
        device=settings.device,
        precision=settings.precision,
        threads=settings.threads,
    )
    ramp = Waveform(f, "cw", ramp_s=settings.ramp_periods * period)
    angle = math.radians(exposure.direction_deg)
    direction = (math.cos(angle), math.sin(angle))
    box = [(i0 - _TF_PAD, i0 + n + _TF_PAD) for n in nd]
    sim.add_plane_wave(
        ramp,
        exposure.amplitude_v_per_m,
        direction,
        box,
        origin=(float(i0), float(i0)),
        eps_r=bg.eps_r,
        sigma_s_per_m=bg.sigma_s_per_m,
    )

    # Steps until the ramp has crossed the grid (twice, for a round trip through
    # the slowest material), then windows of DFT until two agree.
    n_max = max(eps.max(), 1.0)
    crossing_s = 2.0 * math.hypot(*shape) * scene.cell_m * math.sqrt(n_max) / C0_M_PER_S
    warm = (
        settings.ramp_periods + settings.settle_periods + min(crossing_s / period, 40)
    )
    t0 = time.perf_counter()
    sim.step(math.ceil(warm) * spp)
    lo = tuple(i0 for _ in nd)
    hi = tuple(i0 + n for n in nd)
    previous, change, converged = None, math.inf, False
    while True:
        sim.start_dft([f], lo, hi)
        sim.step(settings.dft_periods * spp)
        current = sim.phasors()
        main = current["ez" if exposure.polarization == "TMz" else "hz"][0]
        if previous is not None:
            change = float(
                np.linalg.norm(main - previous) / max(np.linalg.norm(main), 1e-300)
            )
            if change < settings.steady_state_tol:
                converged = True
                break
        previous = main
        if sim.n >= settings.max_periods * spp:
            logger.warning(
                "no steady state after %s periods at %s Hz (change %.3g)",
                settings.max_periods,
                f,
                change,
            )
            break
    sim.bk.synchronize()
    elapsed = time.perf_counter() - t0
    fields = _to_centres(current)
    if exposure.polarization == "TMz":
        e_abs = np.abs(fields["ez"])
    else:
        e_abs = np.sqrt(np.abs(fields["ex"]) ** 2 + np.abs(fields["ey"]) ** 2)
    return FieldSolution(
        fields=fields,
        e_abs=e_abs,
        maps=maps,
        steps=sim.n,
        periods=sim.n / spp,
        converged=converged,
        change=change,
        cell_updates_per_s=sim.cells * sim.n / max(elapsed, 1e-9),
    )


def _to_centres(phasors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Interpolate DFT regions (one index extra below) to cell centres (nx, ny)."""
    from medtwin_ml.solvers.emc._yee import MODES

    offsets = {c.name: c.offset for comps in MODES.values() for c in comps}
    out = {}
    for name, z in phasors.items():
        z = z[0]
        for axis, off in enumerate(offsets[name]):
            lo = [slice(None)] * z.ndim
            hi = list(lo)
            if off == 0:
                lo[axis] = slice(1, None)
                z = z[tuple(lo)]
            else:
                lo[axis], hi[axis] = slice(0, -1), slice(1, None)
                z = 0.5 * (z[tuple(lo)] + z[tuple(hi)])
        out[name] = z
    return out
