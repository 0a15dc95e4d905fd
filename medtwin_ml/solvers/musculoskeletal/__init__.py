"""Musculoskeletal twin: a seated knee moved by Hill-type muscles, FES and an exo.

Public: :data:`TWIN`, the boundary models, :func:`simulate`, :func:`simulate_batch`,
:func:`sample_cohort`, :func:`cases_from_design`, :func:`verification`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from medtwin_ml.cohorts.musculoskeletal import COHORTS, cohort_card, sample_cohort
from medtwin_ml.solvers.musculoskeletal._models import (
    ExoTorqueBlock,
    MusculoskeletalDevice,
    MusculoskeletalParameters,
    MusculoskeletalScenario,
    StimulationBurst,
)
from medtwin_ml.solvers.musculoskeletal._solver import (
    OUTPUT_COLUMNS,
    simulate,
    simulate_batch,
)
from medtwin_ml.solvers.musculoskeletal._verify import verification
from medtwin_ml.twin import Case, DomainVariable, InputDomain, Quantity, TwinSpec

__all__ = [
    "INPUT_DOMAIN",
    "TWIN",
    "ExoTorqueBlock",
    "MusculoskeletalDevice",
    "MusculoskeletalParameters",
    "MusculoskeletalScenario",
    "StimulationBurst",
    "cases_from_design",
    "cohort_card",
    "sample_cohort",
    "simulate",
    "simulate_batch",
    "verification",
]

INPUT_DOMAIN = InputDomain(
    variables=[
        DomainVariable(
            name="pulse_width_us", unit="us", low=0, high=500, description="FES burst"
        ),
        DomainVariable(name="amplitude_ma", unit="mA", low=20, high=100),
        DomainVariable(name="frequency_hz", unit="Hz", low=15, high=50),
        DomainVariable(
            name="stim_duration_s", unit="s", low=0.2, high=1.5, description="burst"
        ),
        DomainVariable(
            name="exo_torque_nm",
            unit="N m",
            low=-10,
            high=20,
            description="scheduled exo torque during the burst, positive extends",
        ),
    ]
)

_OPTIONS = {
    "duration_s": 3.0,
    "output_interval_s": 0.01,
    "stim_start_s": 0.5,
    "initial_angle_deg": 0.0,
}


def cases_from_design(
    design: pd.DataFrame,
    patients: Sequence[MusculoskeletalParameters],
    options: Mapping[str, Any] | None = None,
) -> list[Case]:
    """One case per design row (columns: the input domain's names), row i with
    ``patients[i]``.

    Each case stimulates the extensor in one burst starting at ``stim_start_s`` and
    applies the scheduled exoskeleton torque over the same window. ``options`` may set
    ``duration_s`` (3), ``output_interval_s`` (0.01), ``stim_start_s`` (0.5) and
    ``initial_angle_deg`` (0).
    """
    opts = dict(_OPTIONS)
    unknown = sorted(set(options or {}) - set(opts))
    if unknown:
        raise ValueError(f"unknown options {unknown}; expected some of {sorted(opts)}")
    opts.update(options or {})
    missing = sorted(set(INPUT_DOMAIN.names) - set(design.columns))
    if missing:
        raise ValueError(f"design lacks columns {missing}")
    if len(design) != len(patients):
        raise ValueError(
            f"design has {len(design)} rows but {len(patients)} patients were given"
        )
    cases = []
    for row, params in zip(design.to_dict("records"), patients, strict=True):
        window = {"start_s": opts["stim_start_s"], "duration_s": row["stim_duration_s"]}
        device = MusculoskeletalDevice(
            amplitude_ma=row["amplitude_ma"], frequency_hz=row["frequency_hz"]
        )
        scenario = MusculoskeletalScenario(
            duration_s=opts["duration_s"],
            output_interval_s=opts["output_interval_s"],
            initial_angle_deg=opts["initial_angle_deg"],
            stimulation=[
                StimulationBurst(**window, pulse_width_us=row["pulse_width_us"])
            ],
            exo_torque=[ExoTorqueBlock(**window, torque_nm=row["exo_torque_nm"])],
        )
        cases.append(Case(params=params, device=device, scenario=scenario))
    return cases


_UNITS = {
    "knee_angle_deg": ("deg", "extension from the hanging shank; 90 = straight knee"),
    "knee_velocity_deg_s": ("deg/s", "positive extends"),
    "extensor_force_n": ("N", "extensor (quadriceps) tendon force"),
    "flexor_force_n": ("N", "flexor (hamstrings) tendon force"),
    "extensor_activation": ("1", "extensor activation"),
    "flexor_activation": ("1", "flexor activation"),
    "extensor_excitation": ("1", "extensor excitation from FES"),
    "flexor_excitation": ("1", "flexor excitation from FES"),
    "muscle_torque_nm": ("N m", "net muscle torque at the knee, positive extends"),
    "exo_torque_nm": ("N m", "exoskeleton torque, positive extends"),
}

TWIN = TwinSpec(
    name="musculoskeletal",
    title="Seated knee with Hill-type muscles, FES stimulation and exoskeleton",
    output_kind="timeseries",
    parameters=MusculoskeletalParameters,
    device=MusculoskeletalDevice,
    scenario=MusculoskeletalScenario,
    outputs=tuple(Quantity(k, *_UNITS[k]) for k in OUTPUT_COLUMNS),
    input_domain=INPUT_DOMAIN,
    solver_version="1",
    simulate=simulate,
    simulate_batch=simulate_batch,
    verification=verification,
    cases_from_design=cases_from_design,
    sample_cohort=sample_cohort,
    cohorts=tuple(COHORTS),
)
