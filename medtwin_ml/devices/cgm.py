"""A continuous glucose monitor: subcutaneous glucose, sampled, with sensor noise.

The sensor reads the subcutaneous glucose the twin computes (its lag behind plasma
glucose is part of the physiology), adds noise and clips to the sensor's range.

Noise follows Breton and Kovatchev, J Diabetes Sci Technol 2(5):853, 2008: a
first-order autoregressive sequence on a 15-minute grid,
``e_k = pacf * (e_{k-1} + v_k)`` with ``v_k ~ N(0, 1)``, started from its stationary
distribution, mapped through a Johnson SU transform
``eps = xi + lambda * sinh((e - gamma) / delta)`` (mg/dL). A sensor that samples more
often than every 15 minutes reads the sequence interpolated linearly between its
15-minute knots, so the noise keeps the published correlation over 15 minutes.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from medtwin_ml.config import BoundaryModel

__all__ = ["CgmSettings", "cgm_noise_mg_dl", "cgm_reading_mg_dl", "johnson_su"]

NOISE_GRID_MIN = 15.0
"""Spacing of the published autoregressive noise sequence [min]."""


class CgmSettings(BoundaryModel):
    """Sampling, noise and range of a CGM (defaults: Breton and Kovatchev 2008)."""

    sample_period_min: int = Field(
        5, ge=1, le=15, description="time between readings [min]"
    )
    noise: bool = Field(True, description="add sensor noise (False: a perfect sensor)")
    pacf: float = Field(
        0.7, ge=0, lt=1, description="autocorrelation of the noise over 15 min [1]"
    )
    xi_mg_dl: float = Field(-5.47, description="Johnson SU location xi [mg/dL]")
    lambda_mg_dl: float = Field(
        15.9574, gt=0, description="Johnson SU scale lambda [mg/dL]"
    )
    gamma: float = Field(-0.5444, description="Johnson SU shape gamma [1]")
    delta: float = Field(1.6898, gt=0, description="Johnson SU shape delta [1]")
    min_mg_dl: float = Field(39.0, ge=0, description="lowest reading [mg/dL]")
    max_mg_dl: float = Field(600.0, gt=0, description="highest reading [mg/dL]")

    @model_validator(mode="after")
    def _range(self) -> CgmSettings:
        if self.min_mg_dl >= self.max_mg_dl:
            raise ValueError(
                f"min_mg_dl = {self.min_mg_dl} is not below max_mg_dl = "
                f"{self.max_mg_dl}; expected min_mg_dl < max_mg_dl"
            )
        return self


def johnson_su(e: np.ndarray, settings: CgmSettings) -> np.ndarray:
    """The Johnson SU transform of a standardised sequence ``e``, in mg/dL."""
    return settings.xi_mg_dl + settings.lambda_mg_dl * np.sinh(
        (np.asarray(e, dtype=float) - settings.gamma) / settings.delta
    )


def cgm_noise_mg_dl(
    settings: CgmSettings, duration_min: float, seed: int
) -> np.ndarray:
    """Sensor noise at every sample time ``0, P, 2P, ... <= duration_min``, in mg/dL.

    Returns shape ``(n_samples,)``; zeros when ``settings.noise`` is False. The same
    ``seed`` always gives the same sequence.
    """
    sample_times = np.arange(0.0, duration_min + 1e-9, settings.sample_period_min)
    if not settings.noise:
        return np.zeros(sample_times.size)
    rng = np.random.default_rng(seed)
    n_knots = int(np.ceil(duration_min / NOISE_GRID_MIN)) + 1
    v = rng.standard_normal(n_knots)
    e = np.empty(n_knots)
    a = settings.pacf
    e[0] = v[0] * a / np.sqrt(1.0 - a * a)
    for k in range(1, n_knots):
        e[k] = a * (e[k - 1] + v[k])
    knots = np.arange(n_knots) * NOISE_GRID_MIN
    return johnson_su(np.interp(sample_times, knots, e), settings)


def cgm_reading_mg_dl(
    glucose_mg_dl: np.ndarray, noise_mg_dl: np.ndarray, settings: CgmSettings
) -> np.ndarray:
    """What the sensor shows: glucose plus noise, clipped to the sensor's range."""
    return np.clip(
        np.asarray(glucose_mg_dl) + noise_mg_dl, settings.min_mg_dl, settings.max_mg_dl
    )
