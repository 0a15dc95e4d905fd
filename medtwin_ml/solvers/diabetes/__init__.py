"""The diabetes twin: the UVA/Padova type-1 glucose-insulin model with its devices.

The full solver is the 13-state model of Dalla Man et al. (IEEE TBME 2007; JDST
2014) with subcutaneous insulin and glucose, driven by meals, an insulin pump, a CGM
and a controller (:mod:`medtwin_ml.devices`). Two paths integrate it:

* :func:`simulate`, the reference: adaptive DOP853 at relative tolerance 1e-10;
* :func:`simulate_batch`, for datasets: fixed-step RK4 (two steps a minute) in NumPy,
  vectorised across thousands of cases, open or closed loop.

Both agree within 0.1 mg/dL (tested). Outcome metrics live in
:mod:`medtwin_ml.solvers.diabetes.outcomes` (NumPy only); virtual patients in
:mod:`medtwin_ml.cohorts.diabetes`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from medtwin_ml.solvers.diabetes._inputs import (
    CONTROLLERS,
    BasalStep,
    Bolus,
    DiabetesDevice,
    DiabetesScenario,
    Meal,
    plan_delivery,
)
from medtwin_ml.solvers.diabetes._parameters import (
    STATE_NAMES,
    UNUSED_KEYS,
    DiabetesParameters,
)
from medtwin_ml.solvers.diabetes._twin import (
    INPUT_DOMAIN,
    OUTPUT_COLUMNS,
    STATE_OUTPUTS,
    carb_appearance_fraction,
    cases_from_design,
    initial_states,
    patient_basal_u_per_h,
    run_batch,
    simulate,
    simulate_batch,
    tolerance_errors,
    verification,
)
from medtwin_ml.solvers.diabetes.outcomes import OUTCOME_UNITS, glycaemic_outcomes
from medtwin_ml.twin import Case, InputDomain, Quantity, TwinSpec

__all__ = [
    "CONTROLLERS",
    "INPUT_DOMAIN",
    "OUTCOME_UNITS",
    "OUTPUT_COLUMNS",
    "STATE_NAMES",
    "STATE_OUTPUTS",
    "TWIN",
    "UNUSED_KEYS",
    "BasalStep",
    "Bolus",
    "DiabetesDevice",
    "DiabetesParameters",
    "DiabetesScenario",
    "Meal",
    "carb_appearance_fraction",
    "cases_from_design",
    "cohort_card",
    "cohort_domain",
    "exogenous_inputs",
    "glycaemic_outcomes",
    "initial_states",
    "outcomes",
    "patient_basal_u_per_h",
    "run_batch",
    "sample_cohort",
    "simulate",
    "simulate_batch",
    "tolerance_errors",
    "verification",
]

SOLVER_VERSION = "1"


def sample_cohort(cohort: str, n: int, seed: int) -> list[DiabetesParameters]:
    """``n`` virtual patients of ``cohort``, reproducible by ``seed``."""
    from medtwin_ml.cohorts.diabetes import sample_cohort as _sample

    return _sample(cohort, n, seed)


def cohort_domain(name: str) -> InputDomain:
    """Bounds of the model parameters over cohort ``name``."""
    from medtwin_ml.cohorts.diabetes import cohort_domain as _domain

    return _domain(name)


def cohort_card(name: str) -> dict[str, Any]:
    """Source, licence and rescaling of cohort ``name``."""
    from medtwin_ml.cohorts.diabetes import cohort_card as _card

    return _card(name)


def exogenous_inputs(
    cases: Sequence[Case], n_points: int, every: int = 1
) -> dict[str, np.ndarray]:
    """Insulin delivered and carbohydrate eaten per minute of open-loop cases.

    With ``every = 1``, the amounts in ``[t, t + 1 min)`` for ``t = 0 .. n_points -
    1``: the same numbers the solver reports, computed without solving. With
    ``every = m``, the mean per minute over each of ``n_points`` intervals of ``m``
    minutes (what the mean of ``m`` one-minute values gives, computed on the coarse
    grid directly). Shape ``(n_cases, n_points)``. A closed loop decides its insulin
    as it runs, so it has no plan to give.
    """
    closed = [i for i, c in enumerate(cases) if c.device.controller != "open_loop"]
    if closed:
        raise ValueError(
            f"case {closed[0]} runs closed loop (controller "
            f"{cases[closed[0]].device.controller!r}); exogenous inputs exist only for "
            "open-loop cases, whose insulin is set by the scenario"
        )
    insulin, carbs = plan_delivery(
        [c.params for c in cases], [c.scenario for c in cases], n_points, every
    )
    if every != 1:
        insulin /= every
        carbs /= every
    return {"insulin_delivered_u": insulin, "carbs_eaten_g": carbs}


def outcomes(outputs: Mapping[str, np.ndarray], dt: float) -> dict[str, np.ndarray]:
    """Glycaemic outcomes of plasma glucose trajectories ``(n, T)`` sampled every
    ``dt`` minutes."""
    return glycaemic_outcomes(np.asarray(outputs["plasma_glucose_mg_dl"]), dt)


TWIN = TwinSpec(
    name="diabetes",
    title="UVA/Padova type-1 diabetes with insulin pump, CGM and controller",
    output_kind="timeseries",
    parameters=DiabetesParameters,
    device=DiabetesDevice,
    scenario=DiabetesScenario,
    outputs=(
        Quantity("plasma_glucose_mg_dl", "mg/dL", "plasma glucose Gp / Vg"),
        Quantity("subcutaneous_glucose_mg_dl", "mg/dL", "subcutaneous glucose Gs / Vg"),
        Quantity("plasma_insulin_pmol_l", "pmol/L", "plasma insulin Ip / Vi"),
        Quantity("insulin_delivered_u", "U", "insulin delivered in [t, t + 1 min)"),
        Quantity("carbs_eaten_g", "g", "carbohydrate eaten in [t, t + 1 min)"),
        Quantity("cgm_mg_dl", "mg/dL", "CGM reading held between samples, with a CGM"),
    ),
    input_domain=INPUT_DOMAIN,
    solver_version=SOLVER_VERSION,
    simulate=simulate,
    simulate_batch=simulate_batch,
    verification=verification,
    cases_from_design=cases_from_design,
    sample_cohort=sample_cohort,
    exogenous_inputs=exogenous_inputs,
    outcomes=outcomes,
    outcome_units=OUTCOME_UNITS,
    cohorts=("adult", "adolescent", "child", "korean_adult"),
)
