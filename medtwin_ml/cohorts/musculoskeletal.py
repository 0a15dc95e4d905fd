"""Virtual patients for the musculoskeletal twin: body size, age and sex set strength.

Body size comes from Korean adult figures (height 172.5 cm men / 159.6 cm women, Size
Korea 2020-21; BMI 24.6 / 23.2 kg/m2, KNHANES 2018). The spreads (height SD 6 cm men,
5.5 cm women; BMI SD 3.2) are assumptions, as are the strength rules below, which
follow the usual shape of published ageing data and are meant to be replaced by a
fitted set:

* segment mass, length, centre of mass and inertia from body mass and height
  (Winter's anthropometric ratios for the leg-and-foot segment: mass 0.061 M, length
  0.246 H, centre of mass 0.606 L from the knee, radius of gyration 0.735 L);
* muscle lengths and moment arms scale with height, maximum forces with
  ``(mass / 75 kg)^(2/3)``;
* women's maximum forces are 0.75 of men's of the same body mass;
* maximum forces fall 1 % a year after age 40;
* each patient's forces vary by a further 10 % (log-normal).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medtwin_ml.solvers.musculoskeletal._models import MusculoskeletalParameters

__all__ = ["COHORTS", "cohort_card", "sample_cohort"]

COHORTS: dict[str, dict[str, Any]] = {
    "korean_adult": {"age_years": (20.0, 69.0)},
    "korean_older_adult": {"age_years": (65.0, 85.0)},
}

_HEIGHT_CM = {"male": (172.5, 6.0), "female": (159.6, 5.5)}
_BMI = {"male": (24.6, 3.2), "female": (23.2, 3.2)}
_FEMALE_STRENGTH = 0.75
_DECLINE_PER_YEAR = 0.01
_DECLINE_FROM_YEARS = 40.0
_REF_MASS_KG = 75.0
_REF_HEIGHT_M = 1.75


def strength_factor(age_years: float, sex: str, body_mass_kg: float) -> float:
    """Maximum force relative to the default 75 kg man under 40."""
    sex_factor = _FEMALE_STRENGTH if sex == "female" else 1.0
    age_factor = 1.0 - _DECLINE_PER_YEAR * max(0.0, age_years - _DECLINE_FROM_YEARS)
    return sex_factor * age_factor * (body_mass_kg / _REF_MASS_KG) ** (2.0 / 3.0)


def patient_from_body(
    age_years: float,
    sex: str,
    height_cm: float,
    body_mass_kg: float,
    strength_noise: float = 1.0,
) -> MusculoskeletalParameters:
    """Parameters of one patient from age, sex and body size."""
    if sex not in _HEIGHT_CM:
        raise ValueError(f"sex {sex!r}; expected 'male' or 'female'")
    h_m = height_cm / 100.0
    seg_len = 0.246 * h_m
    mass = 0.061 * body_mass_kg
    size = h_m / _REF_HEIGHT_M
    force = strength_factor(age_years, sex, body_mass_kg) * strength_noise
    base = MusculoskeletalParameters()
    values = {
        "shank_foot_mass_kg": mass,
        "com_distance_m": 0.606 * seg_len,
        "inertia_kg_m2": mass * (0.735 * seg_len) ** 2,
    }
    for m in ("extensor", "flexor"):
        values[f"{m}_max_force_n"] = getattr(base, f"{m}_max_force_n") * force
        for name in ("optimal_fiber_length_m", "tendon_slack_length_m", "moment_arm_m"):
            values[f"{m}_{name}"] = getattr(base, f"{m}_{name}") * size
    return MusculoskeletalParameters.model_validate(base.model_dump() | values)


def sample_cohort(cohort: str, n: int, seed: int) -> list[MusculoskeletalParameters]:
    """``n`` patients of ``cohort``, the same for the same seed."""
    if cohort not in COHORTS:
        raise ValueError(f"cohort {cohort!r}; expected one of {sorted(COHORTS)}")
    if n < 1:
        raise ValueError(f"n = {n}; expected at least 1 patient")
    rng = np.random.default_rng(seed)
    lo, hi = COHORTS[cohort]["age_years"]
    patients = []
    for _ in range(n):
        sex = "female" if rng.random() < 0.5 else "male"
        age = rng.uniform(lo, hi)
        height = rng.normal(*_HEIGHT_CM[sex])
        height = float(np.clip(height, 140.0, 200.0))
        bmi = float(np.clip(rng.normal(*_BMI[sex]), 16.0, 40.0))
        mass = bmi * (height / 100.0) ** 2
        noise = float(np.exp(rng.normal(0.0, 0.1)))
        patients.append(patient_from_body(age, sex, height, mass, noise))
    return patients


def cohort_card(cohort: str) -> dict[str, Any]:
    """Where the cohort's numbers come from and what was assumed."""
    if cohort not in COHORTS:
        raise ValueError(f"cohort {cohort!r}; expected one of {sorted(COHORTS)}")
    return {
        "cohort": cohort,
        "age_years": list(COHORTS[cohort]["age_years"]),
        "sources": [
            "Size Korea 2020-21 (height, ages 20-69)",
            "KNHANES 2018 (BMI)",
            "Winter, Biomechanics and Motor Control of Human Movement (segment ratios)",
        ],
        "assumptions": [
            "height and BMI spreads",
            "older adults share the body-size figures of ages 20-69",
            f"female strength {_FEMALE_STRENGTH} of male at equal body mass",
            f"strength falls {_DECLINE_PER_YEAR:.0%} a year after "
            f"{_DECLINE_FROM_YEARS:g} years",
            "10 % log-normal strength variation between patients",
        ],
    }
