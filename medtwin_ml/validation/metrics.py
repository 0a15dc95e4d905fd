"""Error metrics of a surrogate against the full solver (numpy only).

Arrays are ``(cases, time)`` or ``(cases, time, outputs)``; reductions run over every
axis but the last unless stated otherwise.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "CLARKE_ZONES",
    "bias",
    "clarke_zone_pct",
    "clarke_zones",
    "mae",
    "mard_pct",
    "max_abs_error",
    "rmse",
]


def rmse(pred: np.ndarray, ref: np.ndarray) -> float:
    """Root-mean-square error, in the unit of the inputs."""
    return float(np.sqrt(np.mean((np.asarray(pred) - np.asarray(ref)) ** 2)))


def mae(pred: np.ndarray, ref: np.ndarray) -> float:
    """Mean absolute error, in the unit of the inputs."""
    return float(np.mean(np.abs(np.asarray(pred) - np.asarray(ref))))


def max_abs_error(pred: np.ndarray, ref: np.ndarray) -> float:
    """Largest absolute error, in the unit of the inputs."""
    return float(np.max(np.abs(np.asarray(pred) - np.asarray(ref))))


def mard_pct(pred: np.ndarray, ref: np.ndarray) -> float:
    """Mean absolute relative difference, in percent of the reference.

    The reference must be positive (glucose, pressures); a zero or negative value
    raises rather than divide by it.
    """
    ref = np.asarray(ref, dtype=float)
    if np.any(ref <= 0):
        raise ValueError("MARD needs a positive reference; found values <= 0")
    return float(100.0 * np.mean(np.abs(np.asarray(pred) - ref) / ref))


def bias(pred: np.ndarray, ref: np.ndarray) -> float:
    """Mean signed error ``pred - ref``, in the unit of the inputs."""
    return float(np.mean(np.asarray(pred, dtype=float) - np.asarray(ref, dtype=float)))


CLARKE_ZONES = ("A", "B", "C", "D", "E")


def clarke_zones(estimate_mg_dl: np.ndarray, reference_mg_dl: np.ndarray) -> np.ndarray:
    """Zone of each (reference, estimate) pair on the Clarke error grid.

    The grid of Clarke, Cox, Gonder-Frederick, Carter and Pohl (Diabetes Care
    10:622, 1987), drawn for a glucose estimate against a reference in mg/dL. Here
    the surrogate is the estimate and the full solver the reference. With ``x`` the
    reference and ``y`` the estimate, the zones are taken in this order:

    * A: ``y`` within 20 % of ``x``, or both at or below 70 mg/dL;
    * E: ``x >= 180`` with ``y <= 70``, or ``x <= 70`` with ``y >= 180``
      (hypo- and hyperglycaemia confused);
    * C: ``70 <= x <= 290`` with ``y >= x + 110``, or ``130 <= x <= 180`` with
      ``y <= 7/5 x - 182`` (an over-correction);
    * D: ``x >= 240`` with ``70 <= y <= 180``, ``x <= 175/3`` with
      ``70 <= y <= 180``, or ``175/3 <= x <= 70`` with ``y >= 6/5 x`` (a failure
      to detect);
    * B: everything else (benign).

    Args:
        estimate_mg_dl, reference_mg_dl: same shape, any.

    Returns:
        An array of one-letter strings of the same shape.
    """
    y = np.asarray(estimate_mg_dl, dtype=float)
    x = np.asarray(reference_mg_dl, dtype=float)
    if x.shape != y.shape:
        raise ValueError(
            f"estimate has shape {y.shape} and reference {x.shape}; expected equal"
        )
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("the error grid needs finite glucose values")
    zone_a = ((x <= 70) & (y <= 70)) | ((y >= 0.8 * x) & (y <= 1.2 * x))
    zone_e = ((x >= 180) & (y <= 70)) | ((x <= 70) & (y >= 180))
    zone_c = ((x >= 70) & (x <= 290) & (y >= x + 110)) | (
        (x >= 130) & (x <= 180) & (y <= 7.0 / 5.0 * x - 182)
    )
    zone_d = (
        ((x >= 240) & (y >= 70) & (y <= 180))
        | ((x <= 175.0 / 3.0) & (y >= 70) & (y <= 180))
        | ((x >= 175.0 / 3.0) & (x <= 70) & (y >= 6.0 / 5.0 * x))
    )
    return np.select(
        [zone_a, zone_e, zone_c, zone_d], ["A", "E", "C", "D"], default="B"
    )


def clarke_zone_pct(
    estimate_mg_dl: np.ndarray, reference_mg_dl: np.ndarray
) -> dict[str, float]:
    """Percent of pairs in each Clarke zone, ``{"A": .., "B": .., ..., "E": ..}``."""
    zones = clarke_zones(estimate_mg_dl, reference_mg_dl).ravel()
    if zones.size == 0:
        raise ValueError("the error grid needs at least one pair")
    return {z: float(100.0 * np.mean(zones == z)) for z in CLARKE_ZONES}
