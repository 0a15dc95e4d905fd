"""The cardiovascular twin: a closed-loop circulation with pacemaker and LVAD.

A lumped model of the Smith et al. (2004) family (time-varying elastance
ventricles, valves with inertance, systemic and pulmonary circuits, pericardium),
with an optional reduced baroreflex, a pacemaker (rate, AV delay) and a
continuous-flow LVAD (speed to flow through a pump curve). Outputs are pressures
(mmHg), volumes (mL) and flows (mL/s) over time; the summary holds per-beat
systolic, diastolic and mean arterial pressure, stroke volume, cardiac output and
ejection fraction.

Public names: :data:`TWIN`, :class:`CardiovascularParameters`,
:class:`CardiovascularDevice`, :class:`CardiovascularScenario`, :func:`simulate`,
:func:`simulate_batch`, :func:`cases_from_design`, :func:`sample_cohort`,
:func:`verification`.
"""

from __future__ import annotations

from medtwin_ml.cohorts.cardiovascular import COHORTS, sample_cohort
from medtwin_ml.solvers.cardiovascular._circulation import BEAT_OUTCOMES, SIGNALS
from medtwin_ml.solvers.cardiovascular._models import (
    CardiovascularDevice,
    CardiovascularParameters,
    CardiovascularScenario,
)
from medtwin_ml.solvers.cardiovascular._twin import (
    cases_from_design,
    simulate,
    simulate_batch,
)
from medtwin_ml.solvers.cardiovascular._verification import verification
from medtwin_ml.twin import DomainVariable, InputDomain, Quantity, TwinSpec

__all__ = [
    "BEAT_OUTCOMES",
    "TWIN",
    "CardiovascularDevice",
    "CardiovascularParameters",
    "CardiovascularScenario",
    "cases_from_design",
    "sample_cohort",
    "simulate",
    "simulate_batch",
    "verification",
]

INPUT_DOMAIN = InputDomain(
    variables=[
        DomainVariable(
            name="pacing_rate_bpm",
            unit="1/min",
            low=50.0,
            high=120.0,
            description="Fixed ventricular pacing rate.",
        ),
        DomainVariable(
            name="av_delay_ms",
            unit="ms",
            low=60.0,
            high=250.0,
            description="Paced atrioventricular delay.",
        ),
        DomainVariable(
            name="lvad_speed_krpm",
            unit="krpm",
            low=8.0,
            high=12.0,
            description="LVAD rotor speed (options lvad=false removes the pump).",
        ),
    ]
)

TWIN = TwinSpec(
    name="cardiovascular",
    title="Closed-loop circulation (Smith 2004 family) with pacemaker and LVAD",
    output_kind="timeseries",
    parameters=CardiovascularParameters,
    device=CardiovascularDevice,
    scenario=CardiovascularScenario,
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
