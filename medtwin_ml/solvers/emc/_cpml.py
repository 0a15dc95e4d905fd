"""Convolutional PML (Roden and Gedney 2000) with kappa = 1.

Inside the layer each spatial derivative ``dG/dx`` in an update gains the auxiliary
term ``psi``, recursively convolved as ``psi <- b psi + a dG/dx`` with

    b = exp(-(sigma + alpha) dt / eps0),   a = sigma / (sigma + alpha) (b - 1).

``sigma`` grows as the ``order``-th power of the depth into the layer up to
``sigma_max = 0.8 (order + 1) / (eta0 dx)``; ``alpha`` falls linearly from
``alpha_max`` at the inner face to zero at the outer one (complex frequency shift).

Not done: kappa > 1 (stretching), which helps absorb evanescent fields grazing the
layer; the scenes here keep objects a few cells away from it, where kappa = 1 has
measured reflections below -40 dB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from medtwin_ml.solvers.emc._materials import C0_M_PER_S, EPS0_F_PER_M, MU0_H_PER_M

__all__ = ["CpmlProfile", "cpml_coefficients"]


@dataclass(frozen=True)
class CpmlProfile:
    """Grading of the layer.

    Attributes:
        cells: thickness in cells.
        order: polynomial order of sigma.
        sigma_scale: multiple of the optimal ``0.8 (order + 1) / (eta0 dx)``.
        alpha_over_omega: ``alpha_max / (eps0 omega)`` at the run frequency.
    """

    cells: int = 12
    order: float = 3.0
    sigma_scale: float = 1.0
    alpha_over_omega: float = 0.05


def cpml_coefficients(
    positions: np.ndarray,
    n: int,
    profile: CpmlProfile,
    cell_m: float,
    dt_s: float,
    omega: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``(b, a)`` at ``positions`` (cell units) of an axis of ``n`` cells.

    The low layer occupies cells ``1 .. cells`` and the high layer cells
    ``n - 1 - cells .. n - 2`` (index 0 and ``n - 1`` are the closing ring).
    """
    m = profile.cells
    depth_lo = np.clip((1 + m - positions) / m, 0.0, 1.0)
    depth_hi = np.clip((positions - (n - 1 - m)) / m, 0.0, 1.0)
    depth = np.maximum(depth_lo, depth_hi)
    eta0 = math.sqrt(MU0_H_PER_M / EPS0_F_PER_M)
    sigma_max = profile.sigma_scale * 0.8 * (profile.order + 1) / (eta0 * cell_m)
    sigma = sigma_max * depth**profile.order
    alpha = profile.alpha_over_omega * EPS0_F_PER_M * omega * (1.0 - depth)
    alpha = np.where(depth > 0, alpha, 0.0)
    b = np.exp(-(sigma + alpha) * dt_s / EPS0_F_PER_M)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(sigma > 0, sigma / (sigma + alpha) * (b - 1.0), 0.0)
    return b, a


def courant_dt(cell_m: float, ndim: int, fraction: float) -> float:
    """``fraction`` of the Courant limit ``dx / (c sqrt(ndim))`` in s."""
    return fraction * cell_m / (C0_M_PER_S * math.sqrt(ndim))
