"""Specific absorption rate in tissue.

Local SAR is ``sigma |E|^2 / (2 rho)`` for peak phasors, in W/kg. A 2D scene has no
cube to average over: the peak spatial-average SAR takes, around each tissue cell,
the square whose side is that of a cube of the averaging mass in that tissue
(``(m / rho)^(1/3)``, 1 g of muscle: 9.7 mm; 10 g: 21 mm), and divides the absorbed
power in its tissue cells by their mass (the 2D reading of IEEE/IEC 62704-1, without
its rules for squares that reach air).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["local_sar", "peak_average_sar"]


def local_sar(
    e_abs: np.ndarray, sigma_s_per_m: np.ndarray, density_kg_per_m3: np.ndarray
) -> np.ndarray:
    """Local SAR (W/kg), shape of ``e_abs``; zero where the density is zero."""
    tissue = density_kg_per_m3 > 0
    sar = np.zeros_like(e_abs, dtype=float)
    sar[tissue] = (
        sigma_s_per_m[tissue] * e_abs[tissue] ** 2 / (2.0 * density_kg_per_m3[tissue])
    )
    return sar


def _box_sum(a: np.ndarray, half: int) -> np.ndarray:
    c = np.pad(a, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    nx, ny = a.shape
    i = np.arange(nx)
    j = np.arange(ny)
    i0, i1 = np.clip(i - half, 0, nx), np.clip(i + half + 1, 0, nx)
    j0, j1 = np.clip(j - half, 0, ny), np.clip(j + half + 1, 0, ny)
    return c[np.ix_(i1, j1)] - c[np.ix_(i0, j1)] - c[np.ix_(i1, j0)] + c[np.ix_(i0, j0)]


def peak_average_sar(
    sar: np.ndarray, density_kg_per_m3: np.ndarray, cell_m: float, mass_kg: float
) -> float:
    """Peak SAR (W/kg) over squares of a ``mass_kg`` cube's side; 0 without tissue."""
    tissue = density_kg_per_m3 > 0
    if not tissue.any():
        return 0.0
    rho = float(np.median(density_kg_per_m3[tissue]))
    side = (mass_kg / rho) ** (1.0 / 3.0)
    half = max(0, math.floor(side / cell_m / 2.0))
    power = _box_sum(sar * density_kg_per_m3, half)
    mass = _box_sum(density_kg_per_m3, half)
    avg = np.where(tissue & (mass > 0), power / np.maximum(mass, 1e-300), 0.0)
    return float(avg.max())
