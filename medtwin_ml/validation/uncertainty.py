"""Calibrated prediction intervals by split conformal prediction.

For each output and each output time, the nonconformity score of a calibration case
is the absolute error ``|y_solver - y_surrogate|``. With ``n`` calibration cases the
half-width is the ``ceil((n + 1) level) / n`` empirical quantile of those scores
(Vovk, Gammerman and Shafer 2005; Lei et al., JASA 113:1094, 2018). If a new case is
exchangeable with the calibration cases, the interval ``y_surrogate +- half_width``
holds its solver value with probability at least ``level`` at each time, whatever the
surrogate's quality: a poor surrogate gets wide intervals, not wrong coverage.

The guarantee is marginal over cases drawn like the calibration cases, that is from
the training domain; outside it (see :mod:`medtwin_ml.validation.domain`) it does not
hold. Numpy only: serving imports this module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["coverage", "fit_conformal", "intervals"]

METHOD = "split_conformal"


def fit_conformal(
    pred: np.ndarray,
    ref: np.ndarray,
    output_names: Sequence[str],
    level: float = 0.9,
) -> dict[str, Any]:
    """Per-output, per-step conformal half-widths from a calibration set.

    Args:
        pred: surrogate outputs, ``(n, K + 1, n_out)``.
        ref: full-solver outputs at the same times, same shape.
        output_names: ``n_out`` names, in the order of the last axis.
        level: nominal coverage, in (0, 1); needs ``n >= level / (1 - level)``
            cases (9 for 0.9) for a finite half-width.

    Returns:
        A JSON-ready dict for a bundle card's ``uncertainty``: ``method``,
        ``level``, ``n_calibration``, ``score`` and ``half_width`` ``{name: list of
        K + 1 floats}`` in each output's unit.
    """
    pred = np.asarray(pred, dtype=float)
    ref = np.asarray(ref, dtype=float)
    if pred.shape != ref.shape or pred.ndim != 3:
        raise ValueError(
            f"pred has shape {pred.shape} and ref {ref.shape}; expected equal shapes "
            "(n, K + 1, n_out)"
        )
    if len(output_names) != pred.shape[2]:
        raise ValueError(
            f"{len(output_names)} output names for {pred.shape[2]} outputs; expected "
            "one name per output"
        )
    if not 0.0 < level < 1.0:
        raise ValueError(f"level = {level}; expected a value in (0, 1)")
    n = pred.shape[0]
    rank = math.ceil((n + 1) * level - 1e-9)  # 1e-9 absorbs rounding of the product
    if rank > n:
        raise ValueError(
            f"{n} calibration cases cannot give a finite {level:g} interval; expected "
            f"at least {math.ceil(level / (1 - level) - 1e-9)}"
        )
    if not (np.all(np.isfinite(pred)) and np.all(np.isfinite(ref))):
        raise ValueError("calibration outputs hold non-finite values")

    scores = np.sort(np.abs(ref - pred), axis=0)  # (n, K + 1, n_out)
    half = scores[rank - 1]  # the rank-th smallest score
    return {
        "method": METHOD,
        "level": float(level),
        "n_calibration": int(n),
        "score": "absolute error per output and output time",
        "half_width": {
            name: half[:, k].tolist() for k, name in enumerate(output_names)
        },
    }


def _half_widths(
    card_uncertainty: Mapping[str, Any], names: Sequence[str], n_times: int
) -> np.ndarray:
    if card_uncertainty.get("method") != METHOD:
        raise ValueError(
            f"uncertainty method {card_uncertainty.get('method')!r}; expected "
            f"{METHOD!r}"
        )
    widths = card_uncertainty["half_width"]
    missing = [n for n in names if n not in widths]
    if missing:
        raise ValueError(f"no half-width for outputs {missing}; have {list(widths)}")
    columns = []
    for name in names:
        w = np.atleast_1d(np.asarray(widths[name], dtype=float))
        if len(w) >= n_times:
            w = w[:n_times]
        else:
            # Beyond the calibrated horizon, take the widest calibrated interval:
            # the guarantee does not extend there, so err on the wide side.
            w = np.concatenate([w, np.full(n_times - len(w), w.max())])
        columns.append(w)
    return np.stack(columns, axis=-1)  # (n_times, n_out)


def intervals(
    card_uncertainty: Mapping[str, Any],
    y: np.ndarray,
    output_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds around surrogate outputs ``y (n, T, n_out)``.

    ``output_names`` name the last axis of ``y`` (default: the calibrated outputs,
    in their stored order). A ``T`` longer than the calibrated horizon takes the
    widest calibrated half-width for the extra times.
    """
    y = np.asarray(y, dtype=float)
    if y.ndim != 3:
        raise ValueError(f"y has shape {y.shape}; expected (n, T, n_out)")
    names = list(output_names or card_uncertainty["half_width"])
    if len(names) != y.shape[2]:
        raise ValueError(f"{len(names)} output names for {y.shape[2]} outputs")
    half = _half_widths(card_uncertainty, names, y.shape[1])
    return y - half, y + half


def coverage(lower: np.ndarray, upper: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Fraction of reference values inside ``[lower, upper]``, per output.

    All three arrays ``(n, T, n_out)``; returns ``(n_out,)`` in [0, 1].
    """
    lower, upper, ref = (np.asarray(a, dtype=float) for a in (lower, upper, ref))
    if not lower.shape == upper.shape == ref.shape or ref.ndim != 3:
        raise ValueError(
            f"shapes {lower.shape}, {upper.shape}, {ref.shape}; expected three equal "
            "(n, T, n_out) shapes"
        )
    inside = (ref >= lower) & (ref <= upper)
    return inside.mean(axis=(0, 1))
