"""Hill-type muscle-tendon unit with a compliant tendon.

All curves are dimensionless: fiber length is normalised by the optimal fiber length
``l_opt``, fiber velocity by ``v_max = vmax_lopt_per_s * l_opt`` (negative when the
fiber shortens), tendon strain is ``(l_t - l_slack) / l_slack`` and forces are
fractions of the maximum isometric force ``F0``.

Force along the tendon (Zajac 1989; Millard et al. 2013, damped equilibrium)::

    F_t / F0 = (a fL(l) fV(v) + fPE(l) + beta v) cos(alpha) = fT(strain)

* ``fL``: active force-length, a Gaussian ``exp(-(l - 1)^2 / 0.45)`` (Thelen 2003).
* ``fPE``: passive fiber force, exponential from ``l = 1``, ``1`` at ``l = 1.6``
  (Thelen 2003, ``k_PE = 4``, ``eps_0 = 0.6``).
* ``fV``: Hill's hyperbola when shortening, ``(1 + v) / (1 - v / k)`` with curvature
  ``k = 0.25``, and a hyperbola rising to ``f_max = 1.8`` when lengthening, joined with
  a continuous slope at ``v = 0``. Both branches are linear-fractional, so with the
  parallel damping ``beta`` the force balance is a quadratic in ``v`` and the fiber
  velocity has a closed form (no iteration, no singularity at zero activation).
* ``fT``: tendon force-strain, exponential toe then linear, ``1`` at 4 % strain
  (Thelen 2003).
* Pennation at constant muscle thickness: ``l sin(alpha) = sin(alpha_0)``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "activation_rate",
    "active_force_length",
    "fiber_velocity",
    "force_velocity",
    "hill_tendon_force",
    "passive_force_length",
    "pennation_cos",
    "tendon_force_strain",
]

GAMMA_FL = 0.45
K_PE = 4.0
EPS0_PE = 0.6
HILL_K = 0.25
F_MAX_ECC = 1.8
# Slope-matching at v = 0: the lengthening hyperbola's initial slope (f_max - 1) / c
# equals the shortening one, 1 + 1 / k.
C_ECC = (F_MAX_ECC - 1.0) / (1.0 + 1.0 / HILL_K)
STRAIN_AT_F0 = 0.04
K_TOE = 3.0
F_TOE = 0.33
STRAIN_TOE = 0.609 * STRAIN_AT_F0
K_LIN = 1.712 / STRAIN_AT_F0
MAX_SIN_PENNATION = 0.99


def active_force_length(l_norm: np.ndarray) -> np.ndarray:
    """Active force-length factor, 1 at the optimal length."""
    return np.exp(-((l_norm - 1.0) ** 2) / GAMMA_FL)


def passive_force_length(l_norm: np.ndarray) -> np.ndarray:
    """Passive fiber force (fraction of F0), zero below the optimal length."""
    stretch = np.maximum(l_norm - 1.0, 0.0)
    return np.expm1(K_PE * stretch / EPS0_PE) / np.expm1(K_PE)


def force_velocity(v_norm: np.ndarray) -> np.ndarray:
    """Force-velocity factor: 1 isometric, 0 at ``v = -1``, toward 1.8 lengthening."""
    v = np.asarray(v_norm, dtype=float)
    short = (1.0 + v) / (1.0 - v / HILL_K)
    vv = np.maximum(v, 0.0)
    lengthen = (1.0 + F_MAX_ECC * vv / C_ECC) / (1.0 + vv / C_ECC)
    return np.where(v < 0.0, short, lengthen)


def tendon_force_strain(strain: np.ndarray) -> np.ndarray:
    """Tendon force (fraction of F0) at ``strain``; zero when slack."""
    s = np.maximum(strain, 0.0)
    toe = F_TOE * np.expm1(K_TOE * np.minimum(s, STRAIN_TOE) / STRAIN_TOE)
    toe /= np.expm1(K_TOE)
    linear = F_TOE + K_LIN * (s - STRAIN_TOE)
    return np.where(s <= STRAIN_TOE, toe, linear)


def pennation_cos(l_norm: np.ndarray, sin_alpha0: np.ndarray) -> np.ndarray:
    """``cos(alpha)`` at constant thickness; ``sin(alpha)`` is capped at 0.99."""
    sin_a = np.minimum(sin_alpha0 / np.maximum(l_norm, 1e-6), MAX_SIN_PENNATION)
    return np.sqrt(1.0 - sin_a**2)


def hill_tendon_force(
    activation: np.ndarray,
    l_norm: np.ndarray,
    v_norm: np.ndarray,
    sin_alpha0: np.ndarray | float = 0.0,
    damping: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Fiber force projected on the tendon, as a fraction of F0.

    ``(a fL(l) fV(v) + fPE(l) + beta v) cos(alpha)``; with a rigid tendon this is the
    muscle-tendon force. Isometric at the optimal length and without pennation it is
    exactly ``a``.
    """
    fiber = (
        activation * active_force_length(l_norm) * force_velocity(v_norm)
        + passive_force_length(l_norm)
        + damping * v_norm
    )
    return fiber * pennation_cos(l_norm, sin_alpha0)


def fiber_velocity(
    activation: np.ndarray,
    l_norm: np.ndarray,
    tendon_force: np.ndarray,
    sin_alpha0: np.ndarray,
    damping: np.ndarray,
    cos_alpha: np.ndarray | None = None,
) -> np.ndarray:
    """Normalised fiber velocity that balances the tendon force (closed form).

    Solves ``a fL fV(v) + fPE + beta v = F_t / cos(alpha)`` for ``v``. Each branch of
    ``fV`` is ``(p + q v) / (1 + w v)``, which turns the balance into the quadratic
    ``beta w v^2 + (A q + beta - r w) v + (A p - r) = 0`` with ``A = a fL`` and
    ``r = F_t / cos(alpha) - fPE``. The branch follows from the sign of ``r - A``
    (the balance at ``v = 0``), and on it the quadratic has exactly one root of the
    right sign because ``beta > 0``.

    Args:
        activation, l_norm, tendon_force: arrays of one shape (tendon force as a
            fraction of F0).
        sin_alpha0: sine of the pennation angle at the optimal length.
        damping: ``beta > 0``, fiber damping in units of ``F0 / v_max``.
        cos_alpha: ``pennation_cos(l_norm, sin_alpha0)`` when already computed.
    """
    if cos_alpha is None:
        cos_alpha = pennation_cos(l_norm, sin_alpha0)
    big_a = activation * active_force_length(l_norm)
    r = tendon_force / cos_alpha - passive_force_length(l_norm)
    lengthening = r >= big_a
    q = np.where(lengthening, F_MAX_ECC / C_ECC, 1.0)
    w = np.where(lengthening, 1.0 / C_ECC, -1.0 / HILL_K)
    a2 = damping * w
    a1 = big_a * q + damping - r * w
    a0 = big_a - r
    disc = np.sqrt(np.maximum(a1 * a1 - 4.0 * a2 * a0, 0.0))
    qq = -0.5 * (a1 + np.where(a1 >= 0.0, disc, -disc))
    safe_qq = np.where(qq == 0.0, 1.0, qq)
    root_a = np.where(qq == 0.0, 0.0, a0 / safe_qq)
    safe_a2 = np.where(a2 == 0.0, 1.0, a2)
    root_b = np.where(a2 == 0.0, root_a, qq / safe_a2)
    return np.where(lengthening, np.maximum(root_a, root_b), np.minimum(root_a, root_b))


def activation_rate(
    excitation: np.ndarray,
    activation: np.ndarray,
    tau_act_s: np.ndarray | float,
    tau_deact_s: np.ndarray | float,
) -> np.ndarray:
    """``da/dt = (u - a) / tau``, ``tau`` the activation constant while ``u > a``."""
    tau = np.where(excitation > activation, tau_act_s, tau_deact_s)
    return (excitation - activation) / tau
