"""Fixed-step integration of a batch of ODEs with piecewise-constant inputs.

Every lumped twin (circulation, lung mechanics, muscle and joint) is a system
``dy/dt = f(t, y, u)`` solved for many cases at once. The cases share one time grid;
each has its own state and its own inputs. Inputs are held constant over each output
interval ``[t[k], t[k+1])``, which is how a device setting or a stimulation schedule
reaches a solver, and how a surrogate later sees it.

The scheme is the classical fourth-order Runge-Kutta method with ``substeps`` equal
steps per output interval. A fixed step keeps the cost of a batch independent of its
hardest case and the result independent of how the batch was formed: case ``i``
gives the same numbers alone or among others.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["Rhs", "rk4"]

Rhs = Callable[[float, np.ndarray, np.ndarray | None], np.ndarray]
"""``rhs(t, y, u) -> dy/dt``: ``y`` is ``(batch, state)``, ``u`` is
``(batch, inputs)`` or ``None``; returns ``(batch, state)``."""


def rk4(
    rhs: Rhs,
    y0: np.ndarray,
    t: np.ndarray,
    *,
    inputs: np.ndarray | None = None,
    substeps: int = 1,
) -> np.ndarray:
    """Integrate ``rhs`` over the output grid ``t`` with classical RK4.

    Args:
        rhs: the vector field, vectorised over the batch (see :data:`Rhs`).
        y0: initial states, shape ``(batch, state)``.
        t: output times, shape ``(time,)``, strictly increasing, in the unit that
            ``rhs`` expects.
        inputs: piecewise-constant inputs, shape ``(batch, time - 1, inputs)``;
            ``inputs[:, k]`` holds over ``[t[k], t[k+1])``. ``None`` when the
            system has no inputs.
        substeps: equal RK4 steps per output interval (at least 1).

    Returns:
        States at the output times, shape ``(batch, time, state)``; the first time
        slice is ``y0``.

    Raises:
        ValueError: if shapes disagree, ``t`` is not strictly increasing or
            ``substeps`` is below 1.
    """
    y0 = np.asarray(y0, dtype=float)
    t = np.asarray(t, dtype=float)
    _check(y0, t, inputs, substeps)

    out = np.empty((y0.shape[0], t.size, y0.shape[1]))
    out[:, 0] = y0
    y = y0.copy()
    for k in range(t.size - 1):
        u = None if inputs is None else inputs[:, k]
        h = (t[k + 1] - t[k]) / substeps
        for j in range(substeps):
            y = _step(rhs, t[k] + j * h, y, u, h)
        out[:, k + 1] = y
    return out


def _step(
    rhs: Rhs, t: float, y: np.ndarray, u: np.ndarray | None, h: float
) -> np.ndarray:
    k1 = rhs(t, y, u)
    k2 = rhs(t + 0.5 * h, y + 0.5 * h * k1, u)
    k3 = rhs(t + 0.5 * h, y + 0.5 * h * k2, u)
    k4 = rhs(t + h, y + h * k3, u)
    return y + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def _check(
    y0: np.ndarray, t: np.ndarray, inputs: np.ndarray | None, substeps: int
) -> None:
    if y0.ndim != 2:
        raise ValueError(f"y0 has shape {y0.shape}; expected (batch, state)")
    if t.ndim != 1 or t.size < 2:
        raise ValueError(f"t has shape {t.shape}; expected (time,) with time >= 2")
    if not np.all(np.diff(t) > 0):
        raise ValueError("t must be strictly increasing")
    if int(substeps) != substeps or substeps < 1:
        raise ValueError(f"substeps = {substeps!r}; expected an integer >= 1")
    if inputs is not None:
        expected = (y0.shape[0], t.size - 1)
        if inputs.ndim != 3 or inputs.shape[:2] != expected:
            raise ValueError(
                f"inputs have shape {inputs.shape}; expected "
                f"(batch, time - 1, inputs) = ({expected[0]}, {expected[1]}, n)"
            )
