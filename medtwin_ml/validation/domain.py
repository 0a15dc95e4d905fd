"""The validity domain of a surrogate: is an input close to the data it learned from?

A surrogate is trusted only near its training data. :class:`ValidityDetector` judges
a case by two tests on its *features* (the model parameters plus, per control, the
total over the horizon and the largest step value):

1. **bounds**: each feature inside the range the training data spanned;
2. **distance**: the Mahalanobis distance from the training data, measured in
   standardised space (each feature centred and scaled by its training spread)
   with a Ledoit-Wolf shrunk covariance, so that a feature the training data held
   constant, or a direction it never varied in, cannot make the distance blow up.
   The threshold is a high quantile (default 0.99) of the training cases'
   out-of-fold distances, so about one new case in a hundred drawn like the
   training data sits beyond it.

The distance catches what the box cannot: a patient whose parameters are each in
range but whose combination the cohort never produced. Numpy only: serving imports
this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["ValidityDetector", "case_features", "feature_names"]

_EIGEN_FLOOR = 1e-6  # relative to the largest eigenvalue of the standardised data
_BOUND_SLACK = 1e-6  # relative to each feature's training range


def feature_names(
    param_names: Sequence[str], control_names: Sequence[str]
) -> list[str]:
    """Names of :func:`case_features`' columns: parameters, then per control its
    ``total`` and ``max_per_step``."""
    names = list(param_names)
    for name in control_names:
        names += [f"{name}.total", f"{name}.max_per_step"]
    return names


def case_features(p: np.ndarray, u: np.ndarray, step: float) -> np.ndarray:
    """Features of cases for the validity detector.

    Args:
        p: parameters, shape ``(n, n_params)``.
        u: controls, the mean of each control over each step, shape
            ``(n, K, n_controls)``.
        step: the surrogate's step, in the time unit of the controls' rates.

    Returns:
        ``(n, n_params + 2 n_controls)``: the parameters, then for each control its
        total over the horizon (``sum(u) * step``) and its largest step mean, in
        the order of :func:`feature_names`.
    """
    p = np.asarray(p, dtype=float)
    u = np.asarray(u, dtype=float)
    if p.ndim != 2 or u.ndim != 3 or len(p) != len(u):
        raise ValueError(
            f"p has shape {p.shape} and u {u.shape}; expected (n, n_params) and "
            "(n, K, n_controls) with the same n"
        )
    if not step > 0:
        raise ValueError(f"step = {step}; expected a positive step")
    totals = u.sum(axis=1) * step
    maxima = u.max(axis=1) if u.shape[1] else np.zeros_like(totals)
    per_control = np.stack([totals, maxima], axis=-1).reshape(len(u), -1)
    return np.concatenate([p, per_control], axis=1)


class ValidityDetector:
    """Bounds plus a Mahalanobis distance from the training data.

    Build one with :meth:`fit` (from training features) or :meth:`from_dict` (from a
    bundle card's ``validity``); do not call the constructor with hand-made arrays.

    Attributes:
        names: feature names, ``(d,)``.
        low, high: training range of each feature, ``(d,)``.
        mean, scale: standardisation, ``(d,)``; ``scale`` is 1 where the training
            data held a feature constant.
        basis, eigenvalues: eigenvectors ``(d, d)`` and floored eigenvalues
            ``(d,)`` of the standardised training covariance.
        threshold: distance above which a case is out of domain.
        quantile: the training quantile the threshold was set at.
        n_train: number of training cases.
    """

    def __init__(
        self,
        names: Sequence[str],
        low: np.ndarray,
        high: np.ndarray,
        mean: np.ndarray,
        scale: np.ndarray,
        basis: np.ndarray,
        eigenvalues: np.ndarray,
        threshold: float,
        quantile: float,
        n_train: int,
    ):
        self.names = list(names)
        self.low = np.asarray(low, dtype=float)
        self.high = np.asarray(high, dtype=float)
        self.mean = np.asarray(mean, dtype=float)
        self.scale = np.asarray(scale, dtype=float)
        self.basis = np.asarray(basis, dtype=float)
        self.eigenvalues = np.asarray(eigenvalues, dtype=float)
        self.threshold = float(threshold)
        self.quantile = float(quantile)
        self.n_train = int(n_train)

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        names: Sequence[str],
        quantile: float = 0.99,
        folds: int = 5,
    ) -> ValidityDetector:
        """Fit bounds, standardisation, covariance and threshold to training data.

        Args:
            features: training features, ``(n, d)``, finite, ``n >= 2``.
            names: ``d`` feature names.
            quantile: the threshold is this quantile of the training cases'
                distances, in (0, 1].
            folds: the distances the threshold reads are out of fold: each case
                is scored by a detector fitted without its fold, so that the
                threshold reflects new cases rather than the ones fitted (with
                ``n`` in the tens and ``d`` in the tens, in-sample distances run
                markedly short). Fewer than ``2 * folds`` cases, or ``folds < 2``,
                fall back to in-sample distances.
        """
        x = np.asarray(features, dtype=float)
        if x.ndim != 2 or len(x) < 2:
            raise ValueError(f"features have shape {x.shape}; expected (n >= 2, d)")
        if len(names) != x.shape[1]:
            raise ValueError(
                f"{len(names)} names for {x.shape[1]} feature columns; expected one "
                "name per column"
            )
        if not np.all(np.isfinite(x)):
            raise ValueError("features hold non-finite values; expected finite")
        if not 0.0 < quantile <= 1.0:
            raise ValueError(f"quantile = {quantile}; expected a value in (0, 1]")

        mean, scale, basis, eigenvalues = _fit_core(x)
        detector = cls(
            names=names,
            low=x.min(axis=0),
            high=x.max(axis=0),
            mean=mean,
            scale=scale,
            basis=basis,
            eigenvalues=eigenvalues,
            threshold=np.inf,
            quantile=quantile,
            n_train=len(x),
        )
        distances = _out_of_fold_distances(x, folds)
        detector.threshold = float(np.quantile(distances, quantile, method="higher"))
        return detector

    def score(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each case from the training data, ``(n,)``."""
        x = self._checked(features)
        return _distances(x, (self.mean, self.scale, self.basis, self.eigenvalues))

    def check(self, features: np.ndarray) -> tuple[np.ndarray, list[list[str]]]:
        """Which cases are in domain, and why the others are not.

        Returns:
            ``ok``, boolean ``(n,)``, and per case a list of reasons (empty when
            in domain): features outside the training range, and a distance above
            the threshold.
        """
        x = self._checked(features)
        slack = _BOUND_SLACK * np.maximum(self.high - self.low, 1e-12)
        below = x < self.low - slack
        above = x > self.high + slack
        distance = self.score(x)
        outside = below | above
        far = distance > self.threshold
        ok = ~(outside.any(axis=1) | far)
        reasons: list[list[str]] = [[] for _ in range(len(x))]
        # Words only for the cases that need them.
        for i in np.flatnonzero(~ok):
            why = reasons[i]
            why.extend(
                f"{self.names[j]} = {x[i, j]:.4g} outside the training range "
                f"[{self.low[j]:.4g}, {self.high[j]:.4g}]"
                for j in np.flatnonzero(outside[i])
            )
            if far[i]:
                why.append(
                    f"distance {distance[i]:.3g} from the training data above the "
                    f"{100 * self.quantile:g} % threshold {self.threshold:.3g}"
                )
        return ok, reasons

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, for a bundle card's ``validity``."""
        return {
            "method": "bounds_and_mahalanobis",
            "features": self.names,
            "low": self.low.tolist(),
            "high": self.high.tolist(),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "basis": self.basis.tolist(),
            "eigenvalues": self.eigenvalues.tolist(),
            "threshold": self.threshold,
            "quantile": self.quantile,
            "n_train": self.n_train,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ValidityDetector:
        """The detector described by :meth:`to_dict`'s output."""
        if d.get("method") != "bounds_and_mahalanobis":
            raise ValueError(
                f"validity method {d.get('method')!r}; expected "
                "'bounds_and_mahalanobis'"
            )
        names = list(d["features"])
        n = len(names)
        arrays = {
            k: np.asarray(d[k], dtype=float)
            for k in ("low", "high", "mean", "scale", "eigenvalues")
        }
        basis = np.asarray(d["basis"], dtype=float).reshape(n, n)
        for key, value in arrays.items():
            if value.shape != (n,):
                raise ValueError(
                    f"validity {key} has shape {value.shape}; expected ({n},)"
                )
        return cls(
            names=names,
            basis=basis,
            threshold=float(d["threshold"]),
            quantile=float(d["quantile"]),
            n_train=int(d["n_train"]),
            **arrays,
        )

    def _checked(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=float)
        if x.ndim != 2 or x.shape[1] != len(self.names):
            raise ValueError(
                f"features have shape {x.shape}; expected (n, {len(self.names)}) "
                f"with columns {self.names}"
            )
        if not np.all(np.isfinite(x)):
            raise ValueError("features hold non-finite values; expected finite")
        return x


def _fit_core(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Standardisation and the eigen-decomposition of the shrunk covariance.

    The covariance of the standardised data is shrunk towards a multiple of the
    identity by the Ledoit-Wolf rule (J. Multivariate Anal. 88:365, 2004), which
    keeps it well conditioned when the cases are few for the dimension or lie on a
    lower-dimensional set (a cohort built from a handful of base patients).
    """
    n, d = x.shape
    mean = x.mean(axis=0)
    spread = x.std(axis=0)
    scale = np.where(spread > 0, spread, 1.0)
    z = (x - mean) / scale
    s = (z.T @ z) / n
    mu = np.trace(s) / d
    target = mu * np.eye(d)
    d2 = float(np.sum((s - target) ** 2))
    norms = np.sum(z * z, axis=1)
    b2_sum = (
        np.sum(norms**2) - 2.0 * np.einsum("ki,ij,kj->", z, s, z) + n * np.sum(s * s)
    )
    b2 = min(float(b2_sum) / n**2, d2)
    alpha = b2 / d2 if d2 > 0 else 1.0
    cov = alpha * target + (1.0 - alpha) * s
    eigenvalues, basis = np.linalg.eigh(cov)
    floor = _EIGEN_FLOOR * max(float(eigenvalues.max()), 1.0)
    return mean, scale, basis, np.maximum(eigenvalues, floor)


def _distances(x: np.ndarray, core: tuple[np.ndarray, ...]) -> np.ndarray:
    mean, scale, basis, eigenvalues = core
    w = (((x - mean) / scale) @ basis) / np.sqrt(eigenvalues)
    return np.sqrt(np.sum(w * w, axis=1))


def _out_of_fold_distances(x: np.ndarray, folds: int) -> np.ndarray:
    n = len(x)
    if folds < 2 or n < 2 * folds:
        return _distances(x, _fit_core(x))
    # Deterministic interleaved folds: the order of the training cases is already
    # the order of a seeded design, and no randomness is needed here.
    fold = np.arange(n) % folds
    out = np.empty(n)
    for f in range(folds):
        held = fold == f
        out[held] = _distances(x[held], _fit_core(x[~held]))
    return out
