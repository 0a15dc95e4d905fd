"""Virtual ventilated patients: normal lungs, ARDS and COPD (one compartment).

Ranges, drawn uniformly, from REFERENCES.md: intubated normal lungs have compliance
40-50 mL/cmH2O and resistance 5-10 cmH2O s/L with the tube; ARDS compliance 20-40;
COPD resistance 15-25. Where REFERENCES.md gives no figure this cohort assumes one
and says so: ARDS resistance as in normal lungs (5-10), COPD compliance 50-70
(emphysema raises static compliance).
"""

from __future__ import annotations

import numpy as np

from medtwin_ml.solvers.respiratory._models import RespiratoryParameters

__all__ = ["COHORTS", "sample_cohort"]

# cohort -> ((compliance low, high) mL/cmH2O, (resistance low, high) cmH2O s/L)
_RANGES = {
    "normal": ((40.0, 50.0), (5.0, 10.0)),
    "ards": ((20.0, 40.0), (5.0, 10.0)),
    "copd": ((50.0, 70.0), (15.0, 25.0)),
}
COHORTS = tuple(_RANGES)


def sample_cohort(cohort: str, n: int, seed: int) -> list[RespiratoryParameters]:
    """``n`` patients of ``cohort``, the same for the same ``seed``.

    Raises:
        ValueError: for an unknown cohort or ``n`` below 1.
    """
    if cohort not in _RANGES:
        raise ValueError(f"cohort {cohort!r}; expected one of {', '.join(COHORTS)}")
    if n < 1:
        raise ValueError(f"n = {n}; expected at least 1 patient")
    (c_lo, c_hi), (r_lo, r_hi) = _RANGES[cohort]
    rng = np.random.default_rng(seed)
    compliance = rng.uniform(c_lo, c_hi, n)
    resistance = rng.uniform(r_lo, r_hi, n)
    return [
        RespiratoryParameters(
            n_compartments=1,
            airway_resistance_cmh2o_s_per_l=float(r),
            resistance_1_cmh2o_s_per_l=0.0,
            compliance_1_ml_per_cmh2o=float(c),
        )
        for c, r in zip(compliance, resistance, strict=True)
    ]
