"""The three-element Windkessel and its input impedance (Westerhof et al. 2009).

``P = Zc Q + Pc`` with ``C dPc/dt = Q - Pc / R``; its input impedance at angular
frequency ``w`` is ``Z(w) = Zc + R / (1 + j w R C)``. Units: mmHg, mL, s.
"""

from __future__ import annotations

import numpy as np

from medtwin_ml.solvers._integrate import rk4

__all__ = ["impedance", "measured_impedance"]


def impedance(frequency_hz: np.ndarray, r: float, c: float, zc: float) -> np.ndarray:
    """Closed-form input impedance (mmHg s/mL), complex, shape of ``frequency_hz``."""
    w = 2.0 * np.pi * np.asarray(frequency_hz, dtype=float)
    return zc + r / (1.0 + 1j * w * r * c)


def measured_impedance(
    frequency_hz: np.ndarray,
    r: float,
    c: float,
    zc: float,
    *,
    dt: float = 1e-3,
    settle_time_constants: float = 12.0,
    window_s: float = 2.0,
) -> np.ndarray:
    """Impedance measured by driving the integrated Windkessel with sine flows.

    All frequencies run as one batch. Each is driven by ``Q = sin(w t)`` (mL/s),
    held constant over each step at its mid-step value; after the transient has
    decayed for ``settle_time_constants`` times ``RC``, the pressure's first
    harmonic over the last ``window_s`` (whole periods of every frequency) gives
    ``Z = P_hat / Q_hat``.

    Returns:
        complex impedance, shape ``(n_frequencies,)``.
    """
    f = np.atleast_1d(np.asarray(frequency_hz, dtype=float))
    w = 2.0 * np.pi * f
    n = round((settle_time_constants * r * c + window_s) / dt)
    t = np.arange(n + 1) * dt
    q_mid = np.sin(w[:, None] * (t[:-1] + 0.5 * dt)[None, :])

    def rhs(_t, y, u):
        return (u - y / r) / c

    pc = rk4(rhs, np.zeros((f.size, 1)), t, inputs=q_mid[..., None])[..., 0]
    q = np.sin(w[:, None] * t[None, :])
    p = zc * q + pc
    last = t >= t[-1] - window_s + 0.5 * dt
    basis = np.exp(-1j * w[:, None] * t[None, last])
    p_hat = (p[:, last] * basis).sum(axis=1)
    q_hat = (q[:, last] * basis).sum(axis=1)
    return p_hat / q_hat
