"""Mie series: a TMz plane wave on a homogeneous circular cylinder (exact, 2D).

With ``exp(+j w t)``, an incident ``Ez = exp(-j k0 r cos(phi - phi_i))`` expands as
``sum_n j^-n J_n(k0 r) exp(j n (phi - phi_i))``. Outside the cylinder the total field
adds ``a_n H2_n(k0 r)``, inside it is ``c_n J_n(k1 r)``; continuity of ``Ez`` and of
``dEz/dr`` (``H_phi``, equal permeabilities) at ``r = a`` gives

    a_n = (k0 J_n'(k0 a) J_n(k1 a) - k1 J_n(k0 a) J_n'(k1 a))
          / (k1 H2_n(k0 a) J_n'(k1 a) - k0 H2_n'(k0 a) J_n(k1 a)),
    c_n = (J_n(k0 a) + a_n H2_n(k0 a)) / J_n(k1 a).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from medtwin_ml.solvers.emc._materials import C0_M_PER_S, EPS0_F_PER_M

__all__ = ["mie_cylinder_tmz"]


def mie_cylinder_tmz(
    x_m: np.ndarray,
    y_m: np.ndarray,
    *,
    frequency_hz: float,
    radius_m: float,
    eps_r: float,
    sigma_s_per_m: float = 0.0,
    center_m: tuple[float, float] = (0.0, 0.0),
    direction_deg: float = 0.0,
    phase_origin_m: tuple[float, float] = (0.0, 0.0),
    n_terms: int | None = None,
) -> np.ndarray:
    """Total ``Ez`` phasor (unit incident amplitude) at points ``(x_m, y_m)``.

    The incident wave has phase 0 at ``phase_origin_m``. Shapes of ``x_m`` and
    ``y_m`` broadcast; the result has their broadcast shape.
    """
    w = 2.0 * math.pi * frequency_hz
    k0 = w / C0_M_PER_S
    eps_c = eps_r - 1j * sigma_s_per_m / (w * EPS0_F_PER_M)
    k1 = k0 * np.sqrt(eps_c + 0j)
    if k1.imag > 0:
        k1 = -k1
    a = radius_m
    n_max = n_terms or int(abs(k1) * a + 4.0 * (abs(k1) * a) ** (1 / 3) + 10)
    x = np.asarray(x_m, dtype=float) - center_m[0]
    y = np.asarray(y_m, dtype=float) - center_m[1]
    r = np.hypot(x, y)
    phi = np.arctan2(y, x) - math.radians(direction_deg)
    u = (math.cos(math.radians(direction_deg)), math.sin(math.radians(direction_deg)))
    shift = np.exp(
        -1j
        * k0
        * (
            (center_m[0] - phase_origin_m[0]) * u[0]
            + (center_m[1] - phase_origin_m[1]) * u[1]
        )
    )
    out = np.zeros(np.broadcast(x, y).shape, dtype=complex)
    outside = r >= a
    for n in range(-n_max, n_max + 1):
        jn0, jnp0 = special.jv(n, k0 * a), special.jvp(n, k0 * a)
        jn1, jnp1 = special.jv(n, k1 * a), special.jvp(n, k1 * a)
        hn0, hnp0 = special.hankel2(n, k0 * a), special.h2vp(n, k0 * a)
        an = (k0 * jnp0 * jn1 - k1 * jn0 * jnp1) / (k1 * hn0 * jnp1 - k0 * hnp0 * jn1)
        cn = (jn0 + an * hn0) / jn1
        ang = (1j) ** (-n) * np.exp(1j * n * phi)
        ro = r[outside]
        out[outside] += ang[outside] * (
            special.jv(n, k0 * ro) + an * special.hankel2(n, k0 * ro)
        )
        out[~outside] += ang[~outside] * cn * special.jv(n, k1 * r[~outside])
    return out * shift
