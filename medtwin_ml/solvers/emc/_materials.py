"""Material properties at a frequency: constants, device materials, Gabriel tissues.

Tissues follow the four-term Cole-Cole fits of Gabriel, Lau and Gabriel (Phys. Med.
Biol. 41:2271, 1996, part III, table 1):

.. math::

    \\varepsilon(\\omega) = \\varepsilon_\\infty
        + \\sum_{n=1}^{4} \\frac{\\Delta\\varepsilon_n}
                               {1 + (j\\omega\\tau_n)^{1-\\alpha_n}}
        + \\frac{\\sigma_i}{j\\omega\\varepsilon_0}

with the ``exp(+j omega t)`` convention; the relative permittivity is the real part and
the conductivity ``sigma = -omega eps0 Im(eps)`` in S/m.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "C0_M_PER_S",
    "EPS0_F_PER_M",
    "MATERIAL_NAMES",
    "MU0_H_PER_M",
    "TISSUES",
    "ColeCole",
    "MaterialProperties",
    "material_properties",
]

C0_M_PER_S = 299_792_458.0
MU0_H_PER_M = 1.25663706212e-6
EPS0_F_PER_M = 1.0 / (MU0_H_PER_M * C0_M_PER_S**2)


@dataclass(frozen=True)
class ColeCole:
    """Four-term Cole-Cole parameters of one tissue (Gabriel 1996, part III).

    Attributes:
        eps_inf: permittivity at infinite frequency.
        delta_eps: the four dispersion magnitudes.
        tau_s: the four relaxation times in s.
        alpha: the four broadening exponents.
        sigma_ionic_s_per_m: static ionic conductivity in S/m.
        density_kg_per_m3: mass density for SAR.
    """

    eps_inf: float
    delta_eps: tuple[float, float, float, float]
    tau_s: tuple[float, float, float, float]
    alpha: tuple[float, float, float, float]
    sigma_ionic_s_per_m: float
    density_kg_per_m3: float

    def complex_permittivity(self, frequency_hz: float) -> complex:
        """Relative complex permittivity at ``frequency_hz`` (``exp(+j w t)``)."""
        w = 2.0 * math.pi * frequency_hz
        eps = complex(self.eps_inf)
        for d, tau, a in zip(self.delta_eps, self.tau_s, self.alpha, strict=True):
            if d:
                eps += d / (1.0 + (1j * w * tau) ** (1.0 - a))
        return eps + self.sigma_ionic_s_per_m / (1j * w * EPS0_F_PER_M)

    def eps_sigma(self, frequency_hz: float) -> tuple[float, float]:
        """``(eps_r, sigma_s_per_m)`` at ``frequency_hz``."""
        eps = self.complex_permittivity(frequency_hz)
        w = 2.0 * math.pi * frequency_hz
        return eps.real, -eps.imag * w * EPS0_F_PER_M


_PS, _NS, _US, _MS = 1e-12, 1e-9, 1e-6, 1e-3

# Gabriel, Lau and Gabriel 1996, part III, table 1; densities from REFERENCES.md.
TISSUES: dict[str, ColeCole] = {
    "muscle": ColeCole(
        4.0,
        (50.0, 7000.0, 1.2e6, 2.5e7),
        (7.234 * _PS, 353.678 * _NS, 318.310 * _US, 2.274 * _MS),
        (0.1, 0.1, 0.1, 0.0),
        0.2,
        1090.0,
    ),
    "skin_dry": ColeCole(
        4.0,
        (32.0, 1100.0, 0.0, 0.0),
        (7.234 * _PS, 32.481 * _NS, 159.155 * _US, 15.915 * _MS),
        (0.0, 0.2, 0.2, 0.2),
        0.0002,
        1109.0,
    ),
    "fat": ColeCole(
        2.5,
        (3.0, 15.0, 3.3e4, 1.0e7),
        (7.958 * _PS, 15.915 * _NS, 159.155 * _US, 7.958 * _MS),
        (0.2, 0.1, 0.05, 0.01),
        0.01,
        911.0,
    ),
    "bone_cortical": ColeCole(
        2.5,
        (10.0, 180.0, 5.0e3, 1.0e5),
        (13.263 * _PS, 79.577 * _NS, 159.155 * _US, 15.915 * _MS),
        (0.2, 0.2, 0.2, 0.0),
        0.02,
        1908.0,
    ),
}

# Device materials: (eps_r, loss tangent). Typical datasheet values: FR-4 laminate
# eps_r 4.4 and tan delta 0.02 near 1 GHz; moulded ABS eps_r 2.8 and tan delta 0.01.
_DIELECTRICS: dict[str, tuple[float, float]] = {
    "air": (1.0, 0.0),
    "vacuum": (1.0, 0.0),
    "fr4": (4.4, 0.02),
    "abs": (2.8, 0.01),
}
_PEC = ("pec", "copper")

MATERIAL_NAMES: tuple[str, ...] = tuple(
    sorted([*_DIELECTRICS, *_PEC, *TISSUES, "skin"])
)


@dataclass(frozen=True)
class MaterialProperties:
    """Properties of a material at one frequency.

    ``density_kg_per_m3`` is zero for non-tissue materials (no SAR is reported there).
    """

    eps_r: float
    sigma_s_per_m: float
    density_kg_per_m3: float = 0.0
    pec: bool = False


def material_properties(name: str, frequency_hz: float) -> MaterialProperties:
    """Properties of the named material at ``frequency_hz``.

    Raises:
        ValueError: ``name`` is not in :data:`MATERIAL_NAMES`.
    """
    key = "skin_dry" if name == "skin" else name
    if key in TISSUES:
        tissue = TISSUES[key]
        eps_r, sigma = tissue.eps_sigma(frequency_hz)
        return MaterialProperties(eps_r, sigma, tissue.density_kg_per_m3)
    if key in _DIELECTRICS:
        eps_r, tan_d = _DIELECTRICS[key]
        sigma = 2.0 * math.pi * frequency_hz * EPS0_F_PER_M * eps_r * tan_d
        return MaterialProperties(eps_r, sigma)
    if key in _PEC:
        return MaterialProperties(1.0, 0.0, pec=True)
    raise ValueError(f"unknown material {name!r}; expected one of {MATERIAL_NAMES}")


def wavelength_m(eps_r: float, sigma_s_per_m: float, frequency_hz: float) -> float:
    """Wavelength ``2 pi / Re(k)`` in a lossy medium, in m."""
    w = 2.0 * math.pi * frequency_hz
    eps_c = eps_r - 1j * sigma_s_per_m / (w * EPS0_F_PER_M)
    k = w / C0_M_PER_S * np.sqrt(complex(eps_c))
    return 2.0 * math.pi / abs(k.real)
