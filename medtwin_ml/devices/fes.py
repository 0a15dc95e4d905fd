"""Functional electrical stimulation (FES): stimulation settings to muscle excitation.

A phenomenological map, stated as such: the charge per pulse (amplitude times pulse
width, 1 mA x 1 us = 1 nC) recruits motor units along a smooth S-shaped curve
between a threshold and a saturation charge (the recruitment curve), and the pulse
frequency sets how far twitches fuse into a tetanus, ``f^2 / (f^2 + f_half^2)``.
Excitation is their product times the fraction of the muscle the electrodes can
reach. The curve's numbers are device and patient properties to be fitted; the
defaults only give plausible surface-stimulation magnitudes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fes_excitation", "recruitment", "tetanic_fusion"]


def recruitment(
    charge_uc: np.ndarray, threshold_uc: np.ndarray, saturation_uc: np.ndarray
) -> np.ndarray:
    """Fraction of reachable motor units recruited by a pulse of ``charge_uc``.

    A cubic smoothstep from 0 at the threshold to 1 at saturation (continuous slope
    at both ends).
    """
    x = np.clip((charge_uc - threshold_uc) / (saturation_uc - threshold_uc), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def tetanic_fusion(
    frequency_hz: np.ndarray, half_fusion_hz: float = 15.0
) -> np.ndarray:
    """Fraction of tetanic force reached at ``frequency_hz`` (0 at 0 Hz, to 1)."""
    f2 = np.square(frequency_hz)
    return f2 / (f2 + half_fusion_hz**2)


def fes_excitation(
    pulse_width_us: np.ndarray,
    amplitude_ma: np.ndarray,
    frequency_hz: np.ndarray,
    threshold_uc: np.ndarray,
    saturation_uc: np.ndarray,
    max_excitation: np.ndarray,
) -> np.ndarray:
    """Muscle excitation in [0, ``max_excitation``] from stimulation settings.

    All arguments broadcast together; the charge per pulse is
    ``amplitude_ma * pulse_width_us / 1000`` in uC.
    """
    charge_uc = np.asarray(amplitude_ma) * np.asarray(pulse_width_us) * 1e-3
    on = np.asarray(pulse_width_us) > 0
    u = recruitment(charge_uc, threshold_uc, saturation_uc) * tetanic_fusion(
        frequency_hz
    )
    return np.where(on, u * max_excitation, 0.0)
