"""Virtual adults for the cardiovascular twin, scaled to Korean population figures.

Body size and blood pressure come from the Korean figures of REFERENCES.md: height
172.5 / 159.6 cm and BMI 24.6 / 23.2 kg/m^2 for men / women (Size Korea 2020-21,
KNHANES 2018), blood pressure 120.2/78.5 and 116.0/73.2 mmHg (KNHANES 2013-14).
The spreads (standard deviations of height 6 cm, BMI 3.3 kg/m^2, systolic 14 mmHg,
diastolic 9 mmHg) and the uniform heart rate of 60-80 per minute are assumptions of
this cohort, not published Korean figures.

The scaling onto the circulation is approximate and stated here in full:

* stressed blood volume scales with the Nadler (1962) total blood volume from height
  and weight, 1500 mL for a total of 5.0 L;
* systemic resistance scales with the target mean arterial pressure over the
  default patient's 85.3 mmHg, and aortic elastance with the target pulse pressure
  over its 43.3 mmHg (both figures measured on the default patient at steady
  state). The pressures a patient then settles at are near, not equal to, the
  targets, because cardiac output also moves.

Sub-cohorts: ``hypertensive`` draws systolic pressure of 140 mmHg and above;
``heart_failure`` has a weak, dilated left ventricle (end-systolic elastance 30-50 %
of normal, a 30 % less stiff diastolic wall, a larger pericardium and 20 % more
stressed volume), the population an LVAD is implanted in.
"""

from __future__ import annotations

import numpy as np

from medtwin_ml.solvers.cardiovascular._models import CardiovascularParameters

__all__ = ["COHORTS", "sample_cohort"]

COHORTS = ("korean_adult", "hypertensive", "heart_failure")

_HEIGHT_CM = {"male": 172.5, "female": 159.6}
_BMI = {"male": 24.6, "female": 23.2}
_SBP = {"male": 120.2, "female": 116.0}
_DBP = {"male": 78.5, "female": 73.2}
_BASE_MAP_MMHG = 85.3
_BASE_PULSE_MMHG = 43.3
_REF_BLOOD_VOLUME_L = 5.0


def sample_cohort(cohort: str, n: int, seed: int) -> list[CardiovascularParameters]:
    """``n`` virtual patients of ``cohort``, the same for the same ``seed``.

    Raises:
        ValueError: for an unknown cohort or ``n`` below 1.
    """
    if cohort not in COHORTS:
        raise ValueError(f"cohort {cohort!r}; expected one of {', '.join(COHORTS)}")
    if n < 1:
        raise ValueError(f"n = {n}; expected at least 1 patient")
    rng = np.random.default_rng(seed)
    male = rng.random(n) < 0.5
    sex = np.where(male, "male", "female")
    height_m = rng.normal([_HEIGHT_CM[s] for s in sex], 6.0) / 100.0
    bmi = np.clip(rng.normal([_BMI[s] for s in sex], 3.3), 16.0, 40.0)
    weight = bmi * height_m**2
    if cohort == "hypertensive":
        sbp = 140.0 + np.abs(rng.normal(0.0, 12.0, n))
        dbp = np.clip(rng.normal(90.0, 8.0, n), 70.0, sbp - 30.0)
    else:
        sbp = np.clip(rng.normal([_SBP[s] for s in sex], 14.0), 95.0, 139.0)
        dbp = np.clip(rng.normal([_DBP[s] for s in sex], 9.0), 55.0, sbp - 25.0)
    heart_rate = rng.uniform(60.0, 80.0, n)
    blood_l = np.where(
        male,
        0.3669 * height_m**3 + 0.03219 * weight + 0.6041,
        0.3561 * height_m**3 + 0.03308 * weight + 0.1833,
    )
    ees_scale = rng.uniform(0.3, 0.5, n)

    base = CardiovascularParameters()
    patients = []
    for i in range(n):
        target_map = dbp[i] + (sbp[i] - dbp[i]) / 3.0
        values = {
            "heart_rate_bpm": float(heart_rate[i]),
            "stressed_blood_volume_ml": float(
                base.stressed_blood_volume_ml * blood_l[i] / _REF_BLOOD_VOLUME_L
            ),
            "systemic_resistance_mmhg_s_per_ml": float(
                base.systemic_resistance_mmhg_s_per_ml * target_map / _BASE_MAP_MMHG
            ),
            "aorta_elastance_mmhg_per_ml": float(
                base.aorta_elastance_mmhg_per_ml * (sbp[i] - dbp[i]) / _BASE_PULSE_MMHG
            ),
        }
        if cohort == "heart_failure":
            values["lv_ees_mmhg_per_ml"] = float(base.lv_ees_mmhg_per_ml * ees_scale[i])
            values["lv_lambda_per_ml"] = base.lv_lambda_per_ml * 0.7
            values["pericardium_v0_ml"] = base.pericardium_v0_ml + 100.0
            values["stressed_blood_volume_ml"] *= 1.2
            values["heart_rate_bpm"] = float(heart_rate[i] + 10.0)
        patients.append(CardiovascularParameters(**values))
    return patients
