"""Verification problems with exact answers; the tests and ``TWIN.verification``
run them.

Each function builds a small problem, runs it, and returns what it measured, so a
test can hold it to a tolerance and a report can print it.
"""

from __future__ import annotations

import math

import numpy as np

from medtwin_ml.solvers.emc._cpml import CpmlProfile, courant_dt
from medtwin_ml.solvers.emc._engine import Fdtd, Waveform
from medtwin_ml.solvers.emc._materials import (
    C0_M_PER_S,
    EPS0_F_PER_M,
    MU0_H_PER_M,
)
from medtwin_ml.solvers.emc._mie import mie_cylinder_tmz
from medtwin_ml.solvers.emc._tfsf import continuum_wavenumber, numerical_wavenumber
from medtwin_ml.twin import CheckResult

__all__ = [
    "cavity_convergence",
    "cpml_reflection_db",
    "fresnel_reflection",
    "line_source_green",
    "mie_error",
    "point_source_wavenumber",
    "run_checks",
    "tfsf_leakage_db",
]

_F = 1.0e9
_LAMBDA = C0_M_PER_S / _F


def _empty(shape, mode="TMz", **kw) -> tuple:
    eps = np.ones(shape)
    sig = np.zeros(shape)
    pec = np.zeros(shape, dtype=bool)
    return mode, eps, sig, pec


def tfsf_leakage_db(
    mode: str = "TMz", direction_deg: float = 30.0, backend="numpy"
) -> float:
    """Peak |E| in the scattered-field region over the incident amplitude, dB."""
    dx = _LAMBDA / 20
    m, sf, nd = 10, 4, 40
    n = 2 * (1 + m + sf) + nd
    i0 = 1 + m + sf
    spp = math.ceil(1 / _F / courant_dt(dx, 2, 0.99))
    sim = Fdtd(
        *_empty((n, n), mode),
        cell_m=dx,
        dt_s=1 / _F / spp,
        cpml=CpmlProfile(m),
        omega_ref=2 * math.pi * _F,
        backend=backend,
    )
    a = math.radians(direction_deg)
    sim.add_plane_wave(
        Waveform(_F, "cw", ramp_s=3 / _F),
        1.0,
        (math.cos(a), math.sin(a)),
        [(i0, i0 + nd)] * 2,
        (i0, i0),
    )
    sim.step(10 * spp)
    sim.start_dft([_F], (1 + m + 1, 1 + m + 1), (n - m - 2, n - m - 2))
    sim.step(2 * spp)
    ph = sim.phasors()
    names = ["ez"] if mode == "TMz" else ["ex", "ey"]
    e = np.sqrt(sum(np.abs(ph[k][0]) ** 2 for k in names))
    # Region indices start at 1 + m; the TF box spans i0 .. i0 + nd.
    sel = np.ones(e.shape, dtype=bool)
    lo, hi = i0 - (1 + m), i0 + nd - (1 + m)
    sel[lo - 1 : hi + 1, lo - 1 : hi + 1] = False
    inside = e[lo + 2 : hi - 2, lo + 2 : hi - 2]
    return 20 * math.log10(e[sel].max() / inside.mean())


def cpml_reflection_db(cells: int = 10) -> dict[str, float]:
    """Reflection of a pulsed line source's wave from the CPML, in dB.

    The field at probes next to the layer of a small grid is compared with the
    same probes of a grid large enough that nothing returns within the run; the
    difference over the peak field is the reflection. ``normal``: probe on the axis
    through the source; ``oblique``: probe near a corner (incidence about 45 deg).
    """
    dx = _LAMBDA / 20
    nd = 40
    dt = courant_dt(dx, 2, 0.99)
    wave = Waveform(_F, "gaussian", width_s=0.6 / _F)
    steps = 260
    margin = int(steps * 0.75) + 10

    def run(pad: int) -> dict[str, list[float]]:
        n = 2 * (1 + cells + pad) + nd
        sim = Fdtd(
            *_empty((n, n)),
            cell_m=dx,
            dt_s=dt,
            cpml=CpmlProfile(cells),
            omega_ref=2 * math.pi * _F,
        )
        c = n // 2
        sim.add_current(np.array([[c, c]]), 1.0, wave)
        o = 1 + cells + pad
        probes = {"normal": (c, o + 1), "oblique": (o + 2, o + 2)}
        trace = {k: [] for k in probes}
        for _ in range(steps):
            sim.step()
            ez = sim.fields["ez"]
            for k, (i, j) in probes.items():
                trace[k].append(float(ez[i, j]))
        return trace

    small, big = run(0), run(margin)
    out = {}
    for k in small:
        s, b = np.array(small[k]), np.array(big[k])
        out[k] = 20 * math.log10(np.abs(s - b).max() / np.abs(b).max())
    return out


def fresnel_reflection(
    eps_r: float = 10.0, sigma_s_per_m: float = 0.5
) -> tuple[complex, complex]:
    """Normal-incidence reflection from a lossy half-space: (measured, Fresnel).

    One-cell-wide periodic grid (a 1D problem on the 2D code). The total field in
    air, ``A (exp(-j k x) + G exp(+j k x))`` with the grid's wavenumber, is fitted
    by least squares; ``G`` is referred to the interface and compared with
    ``(eta2 - eta1) / (eta2 + eta1)``.
    """
    w = 2 * math.pi * _F
    eps_c = eps_r - 1j * sigma_s_per_m / (w * EPS0_F_PER_M)
    lam2 = _LAMBDA / abs(np.sqrt(eps_c).real)
    dx = lam2 / 40
    m, sf, n_air, n_med = 20, 4, 120, 80
    nx = 1 + m + sf + n_air + n_med + m + 1
    shape = (nx, 3)
    i_src = 1 + m + sf
    i_if = i_src + n_air
    eps = np.ones(shape)
    sig = np.zeros(shape)
    eps[i_if:], sig[i_if:] = eps_r, sigma_s_per_m
    spp = math.ceil(1 / _F / courant_dt(dx, 2, 0.99))
    dt = 1 / _F / spp
    sim = Fdtd(
        "TMz",
        eps,
        sig,
        np.zeros(shape, dtype=bool),
        cell_m=dx,
        dt_s=dt,
        cpml=CpmlProfile(m),
        omega_ref=w,
        periodic=(False, True),
    )
    k = sim.add_plane_wave(
        Waveform(_F, "cw", ramp_s=3 / _F),
        1.0,
        (1.0, 0.0),
        [(i_src, nx), None],
        (i_if, 0.0),
    )
    sim.step(30 * spp)
    sim.start_dft([_F], (i_src + 5, 1), (i_if - 5, 2))
    sim.step(2 * spp)
    ez = sim.phasors()["ez"][0][1:, 1]
    x = (np.arange(i_src + 5, i_if - 5) + 0.5 - i_if) * dx
    basis = np.stack([np.exp(-1j * k * x), np.exp(1j * k * x)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, ez, rcond=None)
    gamma = coef[1] / coef[0]
    eta1 = math.sqrt(MU0_H_PER_M / EPS0_F_PER_M)
    eta2 = eta1 / np.sqrt(eps_c)
    return complex(gamma), complex((eta2 - eta1) / (eta2 + eta1))


def cavity_convergence(cells: tuple[int, ...] = (16, 32, 64), periods: float = 2.125):
    """Errors of the TM11 mode of a square PEC cavity after ``periods`` periods.

    Returns ``(cells, relative L2 errors of Ez)``; the observed order is
    ``log2(e_n / e_2n)``. The end time is not a whole number of periods: there the
    leading phase error would multiply ``sin(w t) = 0`` and the order would read 4.
    """
    side = 0.1
    errors = []
    for n in cells:
        dx = side / n
        shape = (n + 1, n + 1)
        omega = C0_M_PER_S * math.pi * math.sqrt(2) / side
        t_end = periods * 2 * math.pi / omega
        steps = math.ceil(t_end / courant_dt(dx, 2, 0.5))
        dt = t_end / steps
        sim = Fdtd(*_empty(shape), cell_m=dx, dt_s=dt, cpml=None)
        pos = {
            c: [
                np.arange(s) * dx + o * dx
                for s, o in zip(shape, comp.offset, strict=True)
            ]
            for c, comp in sim.components.items()
        }
        k = math.pi / side

        for name, t in (("ez", 0.0), ("hx", -dt / 2), ("hy", -dt / 2)):
            sim.set_field(name, _cavity_mode(name, *pos[name], t, k, omega))
        sim.step(steps)
        ref = _cavity_mode("ez", *pos["ez"], steps * dt, k, omega)
        errors.append(
            float(np.linalg.norm(sim.get_field("ez") - ref) / np.linalg.norm(ref))
        )
    return list(cells), errors


def _cavity_mode(name, x, y, t, k, omega) -> np.ndarray:
    """TM11 mode of a square PEC cavity ``[0, pi / k]^2``, unit peak ``Ez``."""
    x, y = np.meshgrid(x, y, indexing="ij")
    if name == "ez":
        return np.sin(k * x) * np.sin(k * y) * math.cos(omega * t)
    s = math.sin(omega * t) / (omega * MU0_H_PER_M)
    if name == "hx":
        return -k * np.sin(k * x) * np.cos(k * y) * s
    return k * np.cos(k * x) * np.sin(k * y) * s


def point_source_wavenumber(
    cells_per_wavelength: float = 10.0, direction_deg: float = 0.0
):
    """Wavenumber measured from the phase of a CW line source's field, 1/m.

    Returns ``(measured, Yee dispersion relation, continuum)``. The phase difference
    between probes at 2 and 6 wavelengths along ``direction_deg`` is matched with
    the phase of the Hankel function ``H0(2)(k r)``.
    """
    from scipy import optimize, special

    dx = _LAMBDA / cells_per_wavelength
    m = 12
    r2 = 6.0
    half = math.ceil(r2 * cells_per_wavelength) + 6
    n = 2 * (1 + m + half) + 1
    spp = math.ceil(1 / _F / courant_dt(dx, 2, 0.99))
    dt = 1 / _F / spp
    sim = Fdtd(
        *_empty((n, n)),
        cell_m=dx,
        dt_s=dt,
        cpml=CpmlProfile(m),
        omega_ref=2 * math.pi * _F,
    )
    c = n // 2
    sim.add_current(np.array([[c, c]]), 1.0, Waveform(_F, "cw", ramp_s=2 / _F))
    sim.step(int(r2 * 1.42 + 6) * spp)
    sim.start_dft([_F], (1, 1), (n - 1, n - 1))
    sim.step(2 * spp)
    ez = sim.phasors()["ez"][0]
    a = math.radians(direction_deg)
    u = (math.cos(a), math.sin(a))
    phases, radii = [], []
    for r in (2.0, r2):
        steps_r = r * cells_per_wavelength
        if abs(u[0]) > 1e-9 and abs(u[1]) > 1e-9:
            steps_r /= math.sqrt(2)
        i = c + round(steps_r * u[0])
        j = c + round(steps_r * u[1])
        radii.append(math.hypot(i - c, j - c) * dx)
        phases.append(np.angle(ez[i - 0, j - 0]))  # region starts at index 0
    measured_dphi = np.angle(np.exp(1j * (phases[1] - phases[0])))
    k0 = 2 * math.pi / _LAMBDA

    def dphi(k: float) -> float:
        p = np.angle(
            special.hankel2(0, k * radii[1]) / special.hankel2(0, k * radii[0])
        )
        return float(p)

    # Unwrap: total phase lag is about k (r2 - r1); search near the continuum.
    turns = round((k0 * (radii[1] - radii[0])) / (2 * math.pi))
    target = measured_dphi - 2 * math.pi * turns

    def g(k: float) -> float:
        unwrapped = -(k * (radii[1] - radii[0])) + np.angle(
            np.exp(1j * (dphi(k) + k * (radii[1] - radii[0])))
        )
        return unwrapped - target

    k_meas = optimize.brentq(g, 0.9 * k0, 1.1 * k0)
    k_yee = numerical_wavenumber(2 * math.pi * _F, dt, dx, u).real
    return k_meas, k_yee, continuum_wavenumber(2 * math.pi * _F, 1.0, 0.0).real


def line_source_green(
    frequencies_hz: tuple[float, ...] = (0.7e9, 1.0e9, 1.3e9),
    radii_cells: tuple[int, ...] = (20, 40),
) -> np.ndarray:
    """One pulsed line current, phasors at several frequencies from one run.

    The running DFTs are normalised by the DFT of the source pulse; the result is
    compared with the exact field of a line current ``I``,
    ``Ez = -(w mu0 / 4) I H0(2)(k r)``, taking the grid's wavenumber for ``k``.
    Returns the complex ratio numerical / exact, shape ``(n_freq, n_radii)``.
    """
    from scipy import special

    f0 = 1.0e9
    dx = _LAMBDA / 30
    m = 12
    half = max(radii_cells) + 20
    n = 2 * (1 + m + half) + 1
    dt = courant_dt(dx, 2, 0.99)
    sim = Fdtd(*_empty((n, n)), cell_m=dx, dt_s=dt, cpml=CpmlProfile(m),
               omega_ref=2 * math.pi * f0)  # fmt: skip
    c = n // 2
    pulse = Waveform(f0, "gaussian", width_s=0.5 / f0)
    sim.add_current(np.array([[c, c]]), 1.0, pulse)  # I = 1 A/m^2 * dx^2
    sim.start_dft(list(frequencies_hz), (1, 1), (n - 1, n - 1), reference=pulse)
    t_end = 8 * pulse.width_s + 3.0 * half * dx / C0_M_PER_S
    sim.step(2 * math.ceil(t_end / dt))
    ez = sim.phasors()["ez"]
    out = np.zeros((len(frequencies_hz), len(radii_cells)), dtype=complex)
    for i, f in enumerate(frequencies_hz):
        w = 2 * math.pi * f
        k = numerical_wavenumber(w, dt, dx, (1.0, 0.0)).real
        for j, r in enumerate(radii_cells):
            exact = -(w * MU0_H_PER_M / 4) * dx**2 * special.hankel2(0, k * r * dx)
            out[i, j] = ez[i][c, c + r] / exact  # the DFT region starts at index 0
    return out


def mie_error(sigma_s_per_m: float = 0.0, eps_r: float = 4.0, backend="numpy") -> float:
    """Relative L2 error of |Ez| against the Mie series, cells within two cells of
    the staircased surface left out."""
    from medtwin_ml.solvers.emc._scenario import EmcScenario
    from medtwin_ml.solvers.emc._scene import EmcScene
    from medtwin_ml.solvers.emc._solve import EmcSolverSettings
    from medtwin_ml.solvers.emc._twin import simulate
    from medtwin_ml.twin import Case

    dx = _LAMBDA / 40
    a = 0.3 * _LAMBDA
    side = 1.5 * _LAMBDA
    c = (side / 2, side / 2)
    scene = EmcScene.model_validate(
        {
            "domain_m": [side, side],
            "cell_m": dx,
            "objects": [
                {
                    "shape": "circle",
                    "center_m": c,
                    "radius_m": a,
                    "eps_r": eps_r,
                    "sigma_s_per_m": sigma_s_per_m,
                }
            ],
        }
    )
    scenario = EmcScenario.model_validate(
        {"source": "plane_wave", "frequency_hz": _F, "direction_deg": 30.0}
    )
    res = simulate(Case(scene, EmcSolverSettings(backend=backend), scenario))
    x, y = np.meshgrid(res.arrays["x_m"], res.arrays["y_m"], indexing="ij")
    ref = mie_cylinder_tmz(
        x,
        y,
        frequency_hz=_F,
        radius_m=a,
        eps_r=eps_r,
        sigma_s_per_m=sigma_s_per_m,
        center_m=c,
        direction_deg=30.0,
    )
    keep = np.abs(np.hypot(x - c[0], y - c[1]) - a) > 2 * dx
    num = np.abs(res.arrays["ez"][keep])
    return float(np.linalg.norm(num - np.abs(ref[keep])) / np.linalg.norm(ref[keep]))


def run_checks() -> list[CheckResult]:
    """The verification suite with its tolerances (a few seconds on one core)."""
    out = []
    leak = tfsf_leakage_db()
    out.append(CheckResult("tfsf_leakage_db", leak < -40, leak, -40.0, "TMz, 30 deg"))
    refl = cpml_reflection_db()
    for k, v in refl.items():
        out.append(CheckResult(f"cpml_reflection_{k}_db", v < -40, v, -40.0))
    g, ref = fresnel_reflection()
    err = abs(g - ref) / abs(ref)
    out.append(CheckResult("fresnel_rel_error", err < 0.02, err, 0.02))
    _, errs = cavity_convergence()
    order = math.log2(errs[-2] / errs[-1])
    out.append(CheckResult("cavity_order", abs(order - 2) < 0.2, order, 0.2))
    ratio = line_source_green()
    err = float(np.abs(ratio - 1).max())
    out.append(CheckResult("line_source_multi_frequency", err < 0.02, err, 0.02))
    for sigma in (0.0, 0.3):
        e = mie_error(sigma)
        out.append(CheckResult(f"mie_rel_l2_sigma_{sigma:g}", e < 0.05, e, 0.05))
    return out
