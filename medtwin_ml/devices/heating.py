"""Heating applicators on skin: contact, surface flux, RF and light absorption.

Volumetric sources are given as exact cell averages of an exponential deposition
profile, so the power a grid absorbs equals the analytic integral whatever the cells:

* RF: ``Q(z) = rho SAR_0 exp(-z / delta)`` (W/m3), ``SAR_0`` the surface specific
  absorption rate (W/kg), ``delta`` the penetration depth.
* Light: Beer-Lambert, ``Q(z) = (1 - R) E mu exp(-mu z)``, ``E`` the irradiance
  (W/m2), ``R`` the specular reflectance, ``mu`` the effective attenuation.
"""

from __future__ import annotations

import numpy as np

__all__ = ["exponential_cell_average", "light_source_w_m3", "rf_source_w_m3"]


def exponential_cell_average(
    z_top_m: np.ndarray, z_bottom_m: np.ndarray, decay_m: np.ndarray
) -> np.ndarray:
    """Mean of ``exp(-z / decay)`` over each cell ``[z_top, z_bottom]``."""
    dz = z_bottom_m - z_top_m
    return decay_m * (np.exp(-z_top_m / decay_m) - np.exp(-z_bottom_m / decay_m)) / dz


def rf_source_w_m3(
    z_top_m: np.ndarray,
    z_bottom_m: np.ndarray,
    density_kg_m3: np.ndarray,
    sar_w_per_kg: float,
    penetration_depth_m: float,
) -> np.ndarray:
    """Cell-averaged RF power density (W/m3)."""
    profile = exponential_cell_average(z_top_m, z_bottom_m, penetration_depth_m)
    return density_kg_m3 * sar_w_per_kg * profile


def light_source_w_m3(
    z_top_m: np.ndarray,
    z_bottom_m: np.ndarray,
    irradiance_w_per_m2: float,
    attenuation_per_m: float,
    reflectance: float,
) -> np.ndarray:
    """Cell-averaged absorbed light power density (W/m3)."""
    profile = exponential_cell_average(z_top_m, z_bottom_m, 1.0 / attenuation_per_m)
    return (1.0 - reflectance) * irradiance_w_per_m2 * attenuation_per_m * profile
