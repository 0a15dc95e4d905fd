"""The respiratory twin: lung mechanics under a mechanical ventilator.

One- or two-compartment resistance-compliance lungs, ventilated in volume control
or pressure control with PEEP, rate and I:E, with optional spontaneous effort.
Outputs over time: airway pressure (cmH2O), flow (L/s), volume (mL); per breath:
peak and plateau pressure, auto-PEEP and delivered tidal volume.

Public names: :data:`TWIN`, :class:`RespiratoryParameters`,
:class:`RespiratoryDevice`, :class:`RespiratoryScenario`, :func:`simulate`,
:func:`simulate_batch`, :func:`cases_from_design`, :func:`sample_cohort`,
:func:`verification`, :func:`closed_form_volume_control`.
"""

from __future__ import annotations

from medtwin_ml.cohorts.respiratory import COHORTS, sample_cohort
from medtwin_ml.solvers.respiratory._models import (
    RespiratoryDevice,
    RespiratoryParameters,
    RespiratoryScenario,
)
from medtwin_ml.solvers.respiratory._twin import (
    BREATH_OUTCOMES,
    SIGNALS,
    cases_from_design,
    simulate,
    simulate_batch,
)
from medtwin_ml.solvers.respiratory._verification import (
    closed_form_volume_control,
    verification,
)
from medtwin_ml.twin import DomainVariable, InputDomain, Quantity, TwinSpec

__all__ = [
    "BREATH_OUTCOMES",
    "TWIN",
    "RespiratoryDevice",
    "RespiratoryParameters",
    "RespiratoryScenario",
    "cases_from_design",
    "closed_form_volume_control",
    "sample_cohort",
    "simulate",
    "simulate_batch",
    "verification",
]

INPUT_DOMAIN = InputDomain(
    variables=[
        DomainVariable(name="peep_cmh2o", unit="cmH2O", low=0.0, high=15.0),
        DomainVariable(name="rate_per_min", unit="1/min", low=8.0, high=30.0),
        DomainVariable(
            name="ie_ratio",
            unit="1",
            low=0.25,
            high=1.0,
            description="Inspiratory over expiratory time.",
        ),
        DomainVariable(
            name="tidal_volume_ml",
            unit="mL",
            low=300.0,
            high=700.0,
            description="Set tidal volume; acts in volume control only.",
        ),
        DomainVariable(
            name="inspiratory_pressure_cmh2o",
            unit="cmH2O",
            low=5.0,
            high=25.0,
            description="Pressure above PEEP; acts in pressure control only.",
        ),
    ]
)

TWIN = TwinSpec(
    name="respiratory",
    title="Lung mechanics (one or two compartments) under a ventilator",
    output_kind="timeseries",
    parameters=RespiratoryParameters,
    device=RespiratoryDevice,
    scenario=RespiratoryScenario,
    outputs=tuple(Quantity(n, u, d) for n, u, d in SIGNALS),
    input_domain=INPUT_DOMAIN,
    solver_version="1",
    simulate=simulate,
    simulate_batch=simulate_batch,
    verification=verification,
    cases_from_design=cases_from_design,
    sample_cohort=sample_cohort,
    cohorts=COHORTS,
)
