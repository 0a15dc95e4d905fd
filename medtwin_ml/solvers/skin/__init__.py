"""Skin twin: Pennes bioheat in layered skin under a heating applicator.

``simulate`` returns a :class:`~medtwin_ml.twin.FieldResult` (``.npz``): the
temperature field over time, the surface temperature, the maximum temperature and
the Arrhenius damage per cell, and a summary with the maximum temperature and damage
per layer and the times the surface reaches the IEC 60601-1 limits (41 and 43 C).

Public: :data:`TWIN`, the boundary models, :func:`simulate`, :func:`simulate_batch`,
:func:`sample_cohort`, :func:`cases_from_design`, :func:`verification`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from medtwin_ml.cohorts.skin import COHORTS, cohort_card, sample_cohort
from medtwin_ml.solvers.skin._models import (
    LAYERS,
    SkinDevice,
    SkinParameters,
    SkinScenario,
)
from medtwin_ml.solvers.skin._solver import IEC_LIMITS_C, simulate, simulate_batch
from medtwin_ml.solvers.skin._verify import verification
from medtwin_ml.twin import Case, DomainVariable, InputDomain, Quantity, TwinSpec

__all__ = [
    "IEC_LIMITS_C",
    "INPUT_DOMAIN",
    "LAYERS",
    "TWIN",
    "SkinDevice",
    "SkinParameters",
    "SkinScenario",
    "cases_from_design",
    "cohort_card",
    "sample_cohort",
    "simulate",
    "simulate_batch",
    "verification",
]

INPUT_DOMAIN = InputDomain(
    variables=[
        DomainVariable(name="contact_temperature_c", unit="C", low=38, high=50),
        DomainVariable(name="heating_duration_s", unit="s", low=10, high=120),
        DomainVariable(name="ambient_temperature_c", unit="C", low=18, high=30),
    ]
)

_SCENARIO_OPTIONS = (
    "duration_s",
    "time_step_s",
    "output_interval_s",
    "geometry",
    "domain_depth_mm",
    "domain_radius_mm",
    "n_radial",
    "min_cell_um",
    "max_cell_um",
    "air_heat_transfer_w_per_m2_k",
)
_DEFAULTS = {"duration_s": 180.0, "time_step_s": 0.1, "output_interval_s": 2.0}


def cases_from_design(
    design: pd.DataFrame,
    patients: Sequence[SkinParameters],
    options: Mapping[str, Any] | None = None,
) -> list[Case]:
    """One contact-heating case per design row, row i with ``patients[i]``.

    ``options`` may set the scenario's numerics and geometry (``duration_s`` 180,
    ``time_step_s`` 0.1, ``output_interval_s`` 2, ``geometry``, ``domain_depth_mm``,
    ``domain_radius_mm``, ``n_radial``, ``min_cell_um``, ``max_cell_um``,
    ``air_heat_transfer_w_per_m2_k``) and ``applicator_radius_mm``.
    """
    options = dict(options or {})
    allowed = {*_SCENARIO_OPTIONS, "applicator_radius_mm"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(
            f"unknown options {unknown}; expected some of {sorted(allowed)}"
        )
    missing = sorted(set(INPUT_DOMAIN.names) - set(design.columns))
    if missing:
        raise ValueError(f"design lacks columns {missing}")
    if len(design) != len(patients):
        raise ValueError(
            f"design has {len(design)} rows but {len(patients)} patients were given"
        )
    scen_opts = _DEFAULTS | {k: v for k, v in options.items() if k in _SCENARIO_OPTIONS}
    dev_opts = {k: v for k, v in options.items() if k == "applicator_radius_mm"}
    cases = []
    for row, params in zip(design.to_dict("records"), patients, strict=True):
        device = SkinDevice(
            mode="contact",
            contact_temperature_c=row["contact_temperature_c"],
            heating_duration_s=row["heating_duration_s"],
            **dev_opts,
        )
        scenario = SkinScenario(
            ambient_temperature_c=row["ambient_temperature_c"], **scen_opts
        )
        cases.append(Case(params=params, device=device, scenario=scenario))
    return cases


TWIN = TwinSpec(
    name="skin",
    title="Pennes bioheat in layered skin with a heating applicator and burn damage",
    output_kind="field",
    parameters=SkinParameters,
    device=SkinDevice,
    scenario=SkinScenario,
    outputs=(
        Quantity("temperature_c", "C", "tissue temperature, (time, depth[, radius])"),
        Quantity("surface_temperature_c", "C", "skin surface, (time[, radius])"),
        Quantity("max_temperature_c", "C", "maximum over time, (depth[, radius])"),
        Quantity("damage", "1", "Arrhenius integral at the end, (depth[, radius])"),
    ),
    input_domain=INPUT_DOMAIN,
    solver_version="1",
    simulate=simulate,
    simulate_batch=simulate_batch,
    verification=verification,
    cases_from_design=cases_from_design,
    sample_cohort=sample_cohort,
    cohorts=tuple(COHORTS),
)
