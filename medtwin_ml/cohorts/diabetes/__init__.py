"""Virtual type-1 patients for the diabetes twin.

Four cohorts:

* ``adult``, ``adolescent``, ``child``: the ten published virtual patients of each
  group of the academic UVA/Padova simulator (see ``SOURCE.md`` beside this file).
  Sampling ``n`` patients draws from the ten with replacement.
* ``korean_adult``: the published adults with body weight rescaled to Korean adults.
  No type-1 parameters of Korean patients are published; the model's parameters are
  per kilogram of body weight except ``BW`` itself, so rescaling ``BW`` is what
  changes with body size (absolute insulin needs and the per-kilogram size of a meal
  scale with it). The target weight is the KNHANES 2018 mean BMI times the Size Korea
  2020-21 mean height squared for the sampled sex, 73.2 kg for men and 59.1 kg for
  women, spread log-normally with a 12 % coefficient of variation (an assumption:
  the references give means only) truncated at two standard deviations.

Every draw is reproducible by seed.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib.resources import files
from typing import Any

import numpy as np

from medtwin_ml.solvers.diabetes._parameters import MODEL_KEYS, DiabetesParameters
from medtwin_ml.twin import DomainVariable, InputDomain

__all__ = [
    "COHORTS",
    "KOREAN_BW_KG",
    "cohort_card",
    "cohort_domain",
    "published_patients",
    "sample_cohort",
]

COHORTS = ("adult", "adolescent", "child", "korean_adult")

_BMI_KG_M2 = {"male": 24.6, "female": 23.2}
_HEIGHT_M = {"male": 1.725, "female": 1.596}
KOREAN_BW_KG = {sex: _BMI_KG_M2[sex] * _HEIGHT_M[sex] ** 2 for sex in _BMI_KG_M2}
"""Mean body weight of Korean adults by sex [kg]: BMI times height squared."""
KOREAN_BW_CV = 0.12
_TRUNCATE_SD = 2.0

_TABLE = "vpatient_params.csv"
_THERAPY = "quest_params.csv"
_SOURCE = (
    "UVA/Padova academic simulator (2008) virtual patients, as redistributed in "
    "simglucose 0.2.11 (vpatient_params.csv; therapy settings CR, CF, Age, TDI from "
    "its Quest.csv, shipped as quest_params.csv)"
)
_LICENCE = "MIT (copyright (c) 2017 Jinyu Xie), text in LICENSE-simglucose"


def _check_name(name: str) -> None:
    if name not in COHORTS:
        raise ValueError(
            f"unknown cohort {name!r}; expected one of {', '.join(COHORTS)}"
        )


@lru_cache(maxsize=1)
def _rows() -> tuple[dict[str, Any], ...]:
    text = files(__package__).joinpath(_TABLE).read_text(encoding="utf-8")
    rows = []
    for raw in csv.DictReader(text.splitlines()):
        row: dict[str, Any] = {"Name": raw["Name"]}
        for key, value in raw.items():
            # The table's x0 columns are its steady state; cases recompute it.
            if key in DiabetesParameters.model_fields and not key.startswith(
                ("Name", "x0_")
            ):
                row[key] = float(value)
        rows.append(row)
    therapy = files(__package__).joinpath(_THERAPY).read_text(encoding="utf-8")
    settings = {r["Name"]: r for r in csv.DictReader(therapy.splitlines())}
    for row in rows:
        for key in ("CR", "CF", "Age", "TDI"):
            row[key] = float(settings[row["Name"]][key])
    return tuple(rows)


def published_patients(group: str) -> list[DiabetesParameters]:
    """The ten published patients of ``group`` ("adult", "adolescent" or "child")."""
    if group not in ("adult", "adolescent", "child"):
        raise ValueError(f"group {group!r}; expected 'adult', 'adolescent' or 'child'")
    return [
        DiabetesParameters.model_validate(row)
        for row in _rows()
        if row["Name"].startswith(f"{group}#")
    ]


def _korean(
    base: DiabetesParameters, male: bool, z: float, k: int
) -> DiabetesParameters:
    sex = "male" if male else "female"
    bw = KOREAN_BW_KG[sex] * float(np.exp(KOREAN_BW_CV * z))
    scale = bw / base.BW
    update: dict[str, Any] = {"BW": bw, "Name": f"korean_adult#{k:04d}({base.Name})"}
    # Insulin needs scale with body weight: the daily dose up, the carbohydrate and
    # the glucose drop covered by one unit down.
    if base.TDI is not None:
        update["TDI"] = base.TDI * scale
    if base.CR is not None:
        update["CR"] = base.CR / scale
    if base.CF is not None:
        update["CF"] = base.CF / scale
    data = {k: v for k, v in base.model_dump().items() if v is not None}
    return DiabetesParameters.model_validate({**data, **update})


def sample_cohort(name: str, n: int, seed: int) -> list[DiabetesParameters]:
    """``n`` patients of cohort ``name``, the same for the same ``seed``.

    Raises:
        ValueError: for an unknown cohort or ``n < 1``.
    """
    _check_name(name)
    if n < 1:
        raise ValueError(f"n = {n}; expected at least 1 patient")
    rng = np.random.default_rng(seed)
    group = "adult" if name == "korean_adult" else name
    base = published_patients(group)
    picks = rng.integers(0, len(base), size=n)
    if name != "korean_adult":
        return [base[j] for j in picks]
    male = rng.random(n) < 0.5
    z = np.clip(rng.standard_normal(n), -_TRUNCATE_SD, _TRUNCATE_SD)
    return [
        _korean(base[j], bool(m), float(zz), k)
        for k, (j, m, zz) in enumerate(zip(picks, male, z, strict=True))
    ]


def cohort_domain(name: str) -> InputDomain:
    """Bounds of every model parameter over the cohort (units in the descriptions)."""
    _check_name(name)
    group = "adult" if name == "korean_adult" else name
    patients = published_patients(group)
    fields = DiabetesParameters.model_fields
    variables = []
    for key in MODEL_KEYS:
        values = np.array([getattr(p, key) for p in patients])
        low, high = float(values.min()), float(values.max())
        if name == "korean_adult" and key == "BW":
            spread = np.exp(KOREAN_BW_CV * _TRUNCATE_SD)
            low = KOREAN_BW_KG["female"] / spread
            high = KOREAN_BW_KG["male"] * spread
        description = fields[key].description or ""
        unit = description.rsplit("[", 1)[-1].rstrip("]") if "[" in description else "1"
        variables.append(
            DomainVariable(
                name=key, unit=unit, low=low, high=high, description=description
            )
        )
    return InputDomain(variables=variables)


def cohort_card(name: str) -> dict[str, Any]:
    """Where the cohort comes from, its licence, and what was rescaled and why."""
    _check_name(name)
    card: dict[str, Any] = {
        "cohort": name,
        "source": _SOURCE,
        "licence": _LICENCE,
        "n_published_patients": 10,
        "sampling": "uniform draw with replacement from the published patients",
        "rescaled": {},
    }
    if name == "korean_adult":
        card["rescaled"] = {
            "TDI, CR, CF": (
                "therapy settings scaled with body weight: TDI times BW / BW_base, "
                "CR and CF divided by it"
            ),
            "BW": (
                "body weight set to the Korean mean for a sex drawn 50/50 "
                f"(men {KOREAN_BW_KG['male']:.1f} kg, women "
                f"{KOREAN_BW_KG['female']:.1f} kg: KNHANES 2018 mean BMI 24.6 / "
                "23.2 kg/m2 times Size Korea 2020-21 mean height 172.5 / 159.6 cm "
                f"squared), log-normal spread CV {KOREAN_BW_CV:.0%} (assumed) "
                f"truncated at {_TRUNCATE_SD:g} SD"
            ),
        }
        card["why"] = (
            "No Korean type-1 model parameters are published. All other parameters "
            "are per kilogram, so body weight is the body-size-dependent parameter: "
            "rescaling it scales absolute insulin needs and the per-kilogram meal load."
        )
    return card
