"""Scenarios (``--scenario``): a plane wave, or an IEC 60601-1-2 immunity test.

IEC 60601-1-2:2014+A1:2020 test levels are r.m.s. values of the unmodulated carrier.
An exposure here is the peak of the field during the test: the radiated-immunity
test (80 MHz - 2.7 GHz, 80 % AM at 1 kHz) peaks at ``level * sqrt(2) * 1.8``; the
proximity-field tests (pulse or FM modulation) at ``level * sqrt(2)``. A full test
sweeps in 1 % steps; a scenario takes a few frequencies of the band, log-spaced, or
those listed.

Not covered: the proximity magnetic-field tests (8 A/m at 30 kHz, 65 A/m at
134.2 kHz, 7.5 A/m at 13.56 MHz); at those wavelengths a full-wave FDTD of a device
is the wrong tool (quasi-static magnetics is the right one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, RootModel, field_validator

from medtwin_ml.config import BoundaryModel

__all__ = [
    "PROXIMITY_ROWS",
    "EmcScenario",
    "Exposure",
    "IecProximity",
    "IecRadiatedImmunity",
    "PlaneWave",
    "exposures",
]

# Table 9 of IEC 60601-1-2:2014: band -> (test frequencies in MHz, level in V/m).
PROXIMITY_ROWS: dict[str, tuple[tuple[float, ...], float]] = {
    "385": ((385.0,), 27.0),
    "450": ((450.0,), 28.0),
    "710-780": ((710.0, 745.0, 780.0), 9.0),
    "810-930": ((810.0, 870.0, 930.0), 28.0),
    "1720-1970": ((1720.0, 1845.0, 1970.0), 28.0),
    "2450": ((2450.0,), 28.0),
    "5100-5800": ((5240.0, 5500.0, 5785.0), 9.0),
}

_AM_PEAK = 1.8  # 80 % amplitude modulation
_RADIATED_BAND_HZ = (80e6, 2.7e9)


class _Incidence(BoundaryModel):
    direction_deg: float = Field(
        0.0, ge=-360.0, le=360.0, description="Propagation direction from +x, deg."
    )
    polarization: Literal["TMz", "TEz"] = Field(
        "TMz", description="TMz: E along z (ez); TEz: E in the plane (ex, ey)."
    )


class PlaneWave(_Incidence):
    """A continuous plane wave of peak amplitude ``amplitude_v_per_m``."""

    source: Literal["plane_wave"] = "plane_wave"
    frequency_hz: float = Field(gt=0.0, le=1e12, description="Frequency, Hz.")
    amplitude_v_per_m: float = Field(1.0, gt=0.0, description="Peak E, V/m.")


class IecRadiatedImmunity(_Incidence):
    """IEC 60601-1-2 radiated RF immunity: 3 V/m (professional) or 10 V/m (home)."""

    source: Literal["iec_60601_radiated"] = "iec_60601_radiated"
    level_v_per_m: Literal[3, 10] = Field(10, description="Test level, V/m r.m.s.")
    n_frequencies: int = Field(4, ge=1, le=64, description="Log-spaced frequencies.")
    frequencies_hz: list[float] | None = Field(
        None, description="Explicit test frequencies in Hz, within 80 MHz - 2.7 GHz."
    )

    @field_validator("frequencies_hz")
    @classmethod
    def _in_band(cls, value):
        if value is not None:
            lo, hi = _RADIATED_BAND_HZ
            bad = [f for f in value if not lo <= f <= hi]
            if bad or not value:
                raise ValueError(f"frequencies {bad or value} outside {lo:g}-{hi:g} Hz")
        return value


class IecProximity(_Incidence):
    """A row of the IEC 60601-1-2 proximity-field table (wireless transmitters)."""

    source: Literal["iec_60601_proximity"] = "iec_60601_proximity"
    band_mhz: Literal[
        "385", "450", "710-780", "810-930", "1720-1970", "2450", "5100-5800"
    ] = Field(description="Row of table 9, by its band in MHz.")


class EmcScenario(
    RootModel[
        Annotated[
            PlaneWave | IecRadiatedImmunity | IecProximity,
            Field(discriminator="source"),
        ]
    ]
):
    """A plane wave or a named IEC 60601-1-2 test, chosen by ``source``."""


@dataclass(frozen=True)
class Exposure:
    """One continuous-wave run: what the solver sees."""

    frequency_hz: float
    amplitude_v_per_m: float
    direction_deg: float
    polarization: str
    label: str


def exposures(scenario: EmcScenario | PlaneWave | IecRadiatedImmunity | IecProximity):
    """The continuous-wave exposures a scenario expands into."""
    s = scenario.root if isinstance(scenario, EmcScenario) else scenario
    inc = {"direction_deg": s.direction_deg, "polarization": s.polarization}
    if isinstance(s, PlaneWave):
        return [
            Exposure(s.frequency_hz, s.amplitude_v_per_m, label="plane wave", **inc)
        ]
    if isinstance(s, IecRadiatedImmunity):
        freqs = s.frequencies_hz or list(
            np.geomspace(*_RADIATED_BAND_HZ, s.n_frequencies)
            if s.n_frequencies > 1
            else [math.sqrt(_RADIATED_BAND_HZ[0] * _RADIATED_BAND_HZ[1])]
        )
        peak = s.level_v_per_m * math.sqrt(2.0) * _AM_PEAK
        return [
            Exposure(float(f), peak, label=f"radiated {s.level_v_per_m} V/m", **inc)
            for f in freqs
        ]
    mhz, level = PROXIMITY_ROWS[s.band_mhz]
    return [
        Exposure(
            f * 1e6, level * math.sqrt(2.0), label=f"proximity {s.band_mhz}", **inc
        )
        for f in mhz
    ]
