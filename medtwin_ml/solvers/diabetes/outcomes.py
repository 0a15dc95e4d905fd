"""Glycaemic outcome metrics, vectorised over cases, in NumPy alone.

Every metric takes glucose sampled at a uniform interval, shape ``(n, T)`` (or
``(T,)`` for one trace), in mg/dL, and returns one value per trace:

* time in range 70-180 mg/dL, below 70 and 54, above 180 and 250 (percent of samples,
  bounds as in the international consensus on time in range, Battelino et al.,
  Diabetes Care 42:1593, 2019: in range is 70 <= G <= 180, below is G < 70 or < 54,
  above is G > 180 or > 250);
* mean glucose and coefficient of variation (population standard deviation over the
  mean, percent);
* LBGI and HBGI (Kovatchev et al., Diabetes Care 20:1655, 1997): the symmetrising
  transform ``f = 1.509 ((ln G)^1.084 - 5.381)``, risk ``10 f^2``, the low index
  averaging the risk of samples with ``f < 0`` and the high index those with
  ``f > 0`` (other samples counting zero);
* hypoglycaemia events: runs of consecutive samples below 70 mg/dL lasting at least
  15 minutes (the consensus level-1 event; the consensus also asks for 15 minutes
  above 70 to end an event, which this count does not wait for).
"""

from __future__ import annotations

import numpy as np

__all__ = ["OUTCOME_UNITS", "glycaemic_outcomes", "risk_transform"]

OUTCOME_UNITS: dict[str, str] = {
    "time_in_range_pct": "%",
    "time_below_70_pct": "%",
    "time_below_54_pct": "%",
    "time_above_180_pct": "%",
    "time_above_250_pct": "%",
    "mean_glucose_mg_dl": "mg/dL",
    "glucose_cv_pct": "%",
    "lbgi": "1",
    "hbgi": "1",
    "hypo_events_count": "events",
}

HYPO_EVENT_MIN = 15.0
_LOW = np.array([54.0, 70.0])
_HIGH = np.array([180.0, 250.0])


def risk_transform(glucose_mg_dl: np.ndarray) -> np.ndarray:
    """Kovatchev's symmetrising transform ``f(G)`` of glucose in mg/dL."""
    g = np.maximum(np.asarray(glucose_mg_dl, dtype=float), 1.0)
    return 1.509 * (np.log(g) ** 1.084 - 5.381)


def _hypo_events(below: np.ndarray, dt_min: float) -> np.ndarray:
    n, t = below.shape
    min_len = int(np.ceil(HYPO_EVENT_MIN / dt_min - 1e-9))
    padded = np.zeros((n, t + 2), dtype=np.int8)
    padded[:, 1:-1] = below
    edges = np.diff(padded, axis=1)
    # Row by row, runs start and end in turn, so the k-th start (in row-major order)
    # pairs with the k-th end.
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)
    long_enough = ends - starts >= min_len
    return np.bincount(rows[long_enough], minlength=n).astype(float)


def glycaemic_outcomes(
    glucose_mg_dl: np.ndarray, dt_min: float
) -> dict[str, np.ndarray]:
    """The outcome metrics of each trace (see the module docstring).

    Args:
        glucose_mg_dl: glucose, shape ``(n, T)`` or ``(T,)``, finite. A model
            driven to severe hypoglycaemia can compute glucose at or below zero;
            such samples count as below 54 mg/dL and enter the risk transform at
            1 mg/dL.
        dt_min: the sampling interval [min], positive.

    Returns:
        ``{name: values}`` with names as in :data:`OUTCOME_UNITS`; each value has
        shape ``(n,)`` (a NumPy scalar for a single trace).

    Raises:
        ValueError: if the glucose is empty or not finite, or
            ``dt_min`` is not positive.
    """
    g = np.asarray(glucose_mg_dl, dtype=float)
    single = g.ndim == 1
    if single:
        g = g[None, :]
    if g.ndim != 2 or g.shape[1] == 0:
        raise ValueError(f"glucose has shape {g.shape}; expected (n, T) with T >= 1")
    if not np.all(np.isfinite(g)):
        raise ValueError("glucose holds non-finite values; expected finite numbers")
    if not (np.isfinite(dt_min) and dt_min > 0):
        raise ValueError(f"dt_min = {dt_min}; expected a positive sampling interval")

    f = risk_transform(g)
    risk = 10.0 * f * f
    mean = g.mean(axis=1)
    t = g.shape[1]
    # Samples below 54 and 70 and above 180 and 250, in two passes.
    n_54, n_70 = np.count_nonzero(g[:, :, None] < _LOW, axis=1).T
    n_180, n_250 = np.count_nonzero(g[:, :, None] > _HIGH, axis=1).T
    out = {
        "time_in_range_pct": 100.0 * ((t - n_70 - n_180) / t),
        "time_below_70_pct": 100.0 * (n_70 / t),
        "time_below_54_pct": 100.0 * (n_54 / t),
        "time_above_180_pct": 100.0 * (n_180 / t),
        "time_above_250_pct": 100.0 * (n_250 / t),
        "mean_glucose_mg_dl": mean,
        "glucose_cv_pct": 100.0 * g.std(axis=1) / mean,
        "lbgi": np.mean(np.where(f < 0, risk, 0.0), axis=1),
        "hbgi": np.mean(np.where(f > 0, risk, 0.0), axis=1),
        "hypo_events_count": _hypo_events(g < 70, dt_min),
    }
    if single:
        out = {k: v[0] for k, v in out.items()}
    return out
