"""The cardiovascular solver's own checks: closed forms and normal adult ranges."""

from __future__ import annotations

import numpy as np

from medtwin_ml.solvers.cardiovascular import _circulation as circ
from medtwin_ml.solvers.cardiovascular._models import (
    CardiovascularDevice,
    CardiovascularParameters,
)
from medtwin_ml.solvers.cardiovascular._windkessel import (
    impedance,
    measured_impedance,
)
from medtwin_ml.twin import CheckResult

__all__ = ["NORMAL_ADULT", "verification"]

# Normal resting adult ranges (issue 8; REFERENCES.md: 120/80 mmHg, 4-6 L/min).
NORMAL_ADULT = {
    "mean_arterial_pressure_mmhg": (70.0, 105.0),
    "cardiac_output_l_min": (4.0, 6.5),
    "ejection_fraction_pct": (50.0, 70.0),
}

# Windkessel of Westerhof et al. 2009: R 1.05 mmHg s/mL, C 1.5 mL/mmHg, Zc 0.05.
_WK = {"r": 1.05, "c": 1.5, "zc": 0.05}
_WK_FREQUENCIES_HZ = np.array([0.5, 1.0, 2.0, 5.0])
# A mid-step held sine input is exact to O((w dt)^2 / 24) = 4.1e-5 at 5 Hz and
# dt = 1 ms; RK4's own error is far below that.
_WK_TOL = 1e-4
# Volume is conserved by construction (the six volume derivatives sum to zero);
# only rounding remains.
_VOLUME_TOL = 1e-9


def verification() -> list[CheckResult]:
    """Windkessel impedance, conservation of blood volume, baseline in normal range.

    Takes about two seconds on one core.
    """
    checks = [_windkessel_check()]

    params = [CardiovascularParameters()] * 2
    devices = [
        CardiovascularDevice(),
        CardiovascularDevice(pacing_rate_bpm=80.0, lvad_speed_krpm=9.0),
    ]
    model = circ.Circulation.from_cases(params, devices)
    t, y = circ.run(model, 4.0, 0.01, 0.002)
    volume = y[..., :6].sum(axis=-1)
    drift = float(np.max(np.abs(volume - volume[:, :1]) / volume[:, :1]))
    checks.append(
        CheckResult(
            name="blood volume conserved (paced, LVAD on)",
            passed=drift <= _VOLUME_TOL,
            measured=drift,
            tolerance=_VOLUME_TOL,
            detail="largest relative change of total stressed volume over 4 s",
        )
    )

    beats = circ.beat_outcomes(t, y, model.signals(t, y), 2)
    for name, (low, high) in NORMAL_ADULT.items():
        value = float(beats[name][0])
        checks.append(
            CheckResult(
                name=f"baseline {name} in normal adult range",
                passed=low <= value <= high,
                measured=value,
                tolerance=0.0,
                detail=f"expected within [{low:g}, {high:g}]",
            )
        )
    return checks


def _windkessel_check() -> CheckResult:
    exact = impedance(_WK_FREQUENCIES_HZ, **_WK)
    measured = measured_impedance(_WK_FREQUENCIES_HZ, **_WK)
    err = float(np.max(np.abs(measured - exact) / np.abs(exact)))
    return CheckResult(
        name="three-element Windkessel impedance",
        passed=err <= _WK_TOL,
        measured=err,
        tolerance=_WK_TOL,
        detail="largest relative error of Z(w) at 0.5, 1, 2 and 5 Hz",
    )
