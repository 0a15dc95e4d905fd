"""Plane waves on the Yee grid: the discrete dispersion relation and TF/SF source.

For a time-harmonic field ``Re(F exp(j w t))`` the leapfrog update of a lossy medium
behaves as a medium of permittivity

    eps_d = eps0 eps_r + sigma cos(w dt / 2) / (j W),   W = 2 sin(w dt / 2) / dt,

and a spatial difference along axis ``a`` of a plane wave ``exp(-j k.r)`` as
multiplication by ``-j K_a`` with ``K_a = 2 sin(k_a dx / 2) / dx``. A plane wave is an
exact solution of the discrete equations when (Taflove and Hagness, ch. 4)

    mu0 eps_d W^2 = sum_a K_a^2.

The total-field/scattered-field source injects the incident field built from that
numerical wavenumber (complex in a lossy background), so that in steady state the
incident wave matches the grid exactly and nothing leaks into the scattered-field
region. The H (or E) part of the incident wave comes from the discrete curl of the
primary component, so the pair also satisfies the discrete Faraday (or Ampere) law.
"""

from __future__ import annotations

import cmath
import math

import numpy as np

from medtwin_ml.solvers.emc._materials import C0_M_PER_S, EPS0_F_PER_M, MU0_H_PER_M

__all__ = ["discrete_eps", "numerical_wavenumber"]


def discrete_eps(eps_r: float, sigma_s_per_m: float, omega: float, dt_s: float):
    """Effective complex permittivity ``eps_d`` (F/m) of the lossy leapfrog update."""
    big_w = 2.0 * math.sin(omega * dt_s / 2.0) / dt_s
    return EPS0_F_PER_M * eps_r + sigma_s_per_m * math.cos(omega * dt_s / 2.0) / (
        1j * big_w
    )


def numerical_wavenumber(
    omega: float,
    dt_s: float,
    cell_m: float | tuple[float, ...],
    direction: tuple[float, ...],
    eps_r: float = 1.0,
    sigma_s_per_m: float = 0.0,
) -> complex:
    """Complex wavenumber (1/m) of a plane wave on the Yee grid along ``direction``.

    Solves ``mu0 eps_d W^2 = sum_a (2 sin(k u_a d_a / 2) / d_a)^2`` by Newton's method
    from the continuum value; ``Im(k) <= 0`` for a decaying wave.
    """
    ndim = len(direction)
    d = (cell_m,) * ndim if isinstance(cell_m, int | float) else tuple(cell_m)
    big_w = 2.0 * math.sin(omega * dt_s / 2.0) / dt_s
    target = MU0_H_PER_M * discrete_eps(eps_r, sigma_s_per_m, omega, dt_s) * big_w**2
    k = cmath.sqrt(target)
    if k.imag > 0:
        k = -k
    for _ in range(100):
        f = -target
        df = 0.0
        for u, h in zip(direction, d, strict=True):
            s = cmath.sin(k * u * h / 2.0)
            c = cmath.cos(k * u * h / 2.0)
            f += (2.0 * s / h) ** 2
            df += 4.0 * s * c * u / h
        step = f / df
        k -= step
        if abs(step) < 1e-14 * abs(k):
            break
    return k


def continuum_wavenumber(omega: float, eps_r: float, sigma_s_per_m: float) -> complex:
    """``k = w sqrt(mu0 eps_c)`` of the continuum, ``Im(k) <= 0``."""
    eps_c = eps_r - 1j * sigma_s_per_m / (omega * EPS0_F_PER_M)
    k = omega / C0_M_PER_S * cmath.sqrt(eps_c)
    return -k if k.imag > 0 else k


def difference_factor(k_axis: complex | np.ndarray, cell_m: float):
    """``K = 2 sin(k dx / 2) / dx``: a difference of ``exp(-j k x)`` is ``-j K``."""
    return 2.0 * np.sin(k_axis * cell_m / 2.0) / cell_m
