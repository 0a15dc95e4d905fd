"""Scenario and device models of the diabetes twin, and the per-minute input plan.

Inputs reach the solver as amounts per minute: ``insulin_u[:, k]`` units and
``carbs_g[:, k]`` grams during the minute ``[k, k + 1)``, delivered at a constant rate
within it. A meal is eaten at ``eating_rate_g_per_min`` from its start; a bolus is
delivered over the one minute that follows its time; a basal rate (or schedule) is
averaged over each minute. Events that start part-way through a minute are shared
between the minutes they overlap, so the amounts are exact whatever the event times.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from medtwin_ml.config import BoundaryModel
from medtwin_ml.devices.cgm import CgmSettings
from medtwin_ml.devices.glucose_controllers import BasalBolusSettings, PidSettings
from medtwin_ml.devices.insulin_pump import PumpSettings
from medtwin_ml.solvers.diabetes._parameters import DiabetesParameters

__all__ = [
    "CONTROLLERS",
    "BasalStep",
    "Bolus",
    "DiabetesDevice",
    "DiabetesScenario",
    "InputPlan",
    "Meal",
    "plan_delivery",
    "plan_inputs",
]

MAX_DURATION_MIN = 43200
CONTROLLERS = ("open_loop", "basal_bolus", "pid")


class Meal(BoundaryModel):
    """A meal: when it starts and how much carbohydrate it holds."""

    time_min: float = Field(ge=0, description="start of the meal [min]")
    carbs_g: float = Field(ge=0, le=500, description="carbohydrate eaten [g]")


class Bolus(BoundaryModel):
    """An insulin bolus, delivered over the minute after ``time_min``."""

    time_min: float = Field(ge=0, description="start of the bolus [min]")
    units: float = Field(ge=0, le=100, description="insulin [U]")


class BasalStep(BoundaryModel):
    """One step of a basal schedule: the rate from ``time_min`` to the next step."""

    time_min: float = Field(ge=0, description="start of this rate [min]")
    u_per_h: float = Field(ge=0, le=35, description="basal rate [U/h]")


class DiabetesScenario(BoundaryModel):
    """Meals, boluses and basal insulin over one case.

    ``basal_u_per_h`` is one rate, a schedule of steps (the first at time 0), or
    absent: then the patient's steady basal rate ``u2ss``. In a closed loop the
    controller replaces the scenario's insulin; meals are eaten all the same.
    """

    duration_min: int = Field(
        gt=0, le=MAX_DURATION_MIN, description="length of the case [min], whole minutes"
    )
    meals: list[Meal] = Field(default_factory=list, description="meals eaten")
    eating_rate_g_per_min: float = Field(
        5.0, gt=0, le=100, description="how fast a meal is eaten [g/min]"
    )
    basal_u_per_h: float | list[BasalStep] | None = Field(
        None, description="basal rate [U/h] or schedule; default: the patient's u2ss"
    )
    boluses: list[Bolus] = Field(default_factory=list, description="insulin boluses")

    @model_validator(mode="after")
    def _schedule(self) -> DiabetesScenario:
        if isinstance(self.basal_u_per_h, float | int) and not (
            0 <= self.basal_u_per_h <= 35
        ):
            raise ValueError(
                f"basal_u_per_h = {self.basal_u_per_h}; expected a rate in [0, 35] U/h"
            )
        if isinstance(self.basal_u_per_h, list):
            times = [s.time_min for s in self.basal_u_per_h]
            if not times or times[0] != 0:
                raise ValueError(
                    f"basal schedule starts at {times[:1]}; expected its first step "
                    "at time_min 0"
                )
            if any(b <= a for a, b in itertools.pairwise(times)):
                raise ValueError(
                    f"basal schedule times {times}; expected strictly increasing"
                )
        return self


class DiabetesDevice(BoundaryModel):
    """Pump, CGM and controller acting on the patient.

    ``controller`` "open_loop" delivers the scenario's insulin exactly; "basal_bolus"
    and "pid" close the loop through the CGM and the pump. ``cgm`` true (or a settings
    object) adds a CGM reading column; a closed loop always reads a CGM (default
    settings when ``cgm`` is false) and reports its readings.
    """

    controller: Literal["open_loop", "basal_bolus", "pid"] = Field(
        "open_loop", description="who decides the insulin"
    )
    cgm: bool | CgmSettings = Field(False, description="CGM on (true or settings)")
    seed: int = Field(0, ge=0, description="seed of the CGM noise")
    pump: PumpSettings = Field(default_factory=PumpSettings)
    basal_bolus: BasalBolusSettings = Field(default_factory=BasalBolusSettings)
    pid: PidSettings = Field(default_factory=PidSettings)

    @property
    def closed_loop(self) -> bool:
        return self.controller != "open_loop"

    def cgm_settings(self) -> CgmSettings | None:
        """The CGM in use, or ``None`` when there is none."""
        if isinstance(self.cgm, CgmSettings):
            return self.cgm
        if self.cgm or self.closed_loop:
            return CgmSettings()
        return None


@dataclass
class InputPlan:
    """Per-minute inputs of ``n`` cases over ``T`` minutes, arrays of shape ``(n, T)``.

    Attributes:
        insulin_u: insulin delivered in each minute [U] (open loop; a closed loop
            overwrites its rows as it runs).
        carbs_g: carbohydrate eaten in each minute [g].
        dose_mg: size of the meal being digested [mg of glucose].
        announced_g: carbohydrate of the meals that start in each minute [g].
    """

    insulin_u: np.ndarray
    carbs_g: np.ndarray
    dose_mg: np.ndarray
    announced_g: np.ndarray


def _pulse(edges: np.ndarray, start: float, width: float, amount: float) -> np.ndarray:
    cumulative = amount * np.clip((edges - start) / width, 0.0, 1.0)
    return np.diff(cumulative)


def _basal_per_minute(
    edges: np.ndarray, basal: float | list[BasalStep] | None, patient_u_per_h: float
) -> np.ndarray:
    if basal is None:
        basal = patient_u_per_h
    if not isinstance(basal, list):
        return np.full(edges.size - 1, float(basal) / 60.0)
    cumulative = np.zeros(edges.size)
    for j, step in enumerate(basal):
        end = basal[j + 1].time_min if j + 1 < len(basal) else np.inf
        cumulative += (
            step.u_per_h / 60.0 * np.clip(edges - step.time_min, 0, end - step.time_min)
        )
    return np.diff(cumulative)


def plan_delivery(
    patients: Sequence[DiabetesParameters],
    scenarios: Sequence[DiabetesScenario],
    n_intervals: int,
    every_min: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Insulin delivered [U] and carbohydrate eaten [g] in each interval ``[k e,
    (k + 1) e)`` min, ``k = 0 .. n_intervals - 1``, ``e = every_min``, of each case:
    ``(n_cases, n_intervals)`` each.

    Vectorised over cases: every meal and bolus of the batch becomes one row of an
    event table, and the amounts of all events are laid on the grid at once. An
    interval's amount is the difference of the cumulative delivery at its ends, so
    the amounts of longer intervals are exactly the sums of the minutes in them.
    """
    if not every_min > 0:
        raise ValueError(f"every_min = {every_min}; expected a positive interval")
    insulin, carbs, _ = _delivery(patients, scenarios, n_intervals, every_min)
    return insulin, carbs


def _delivery(
    patients: Sequence[DiabetesParameters],
    scenarios: Sequence[DiabetesScenario],
    n_intervals: int,
    every_min: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, float, float, float]]]:
    n = len(patients)
    edges = np.arange(n_intervals + 1, dtype=float) * every_min
    insulin = np.zeros((n, n_intervals))
    carbs = np.zeros((n, n_intervals))

    # Basal: one rate per case, or a schedule (rare; laid out case by case).
    rates = np.empty(n)
    for i, (patient, scenario) in enumerate(zip(patients, scenarios, strict=True)):
        basal = scenario.basal_u_per_h
        if isinstance(basal, list):
            insulin[i] = _basal_per_minute(edges, basal, patient.basal_u_per_h)
            rates[i] = 0.0
        else:
            rates[i] = patient.basal_u_per_h if basal is None else float(basal)
    insulin += rates[:, None] / 60.0 * every_min

    # Boluses over one minute; meals at the eating rate.
    bolus = [
        (i, b.time_min, 1.0, b.units)
        for i, sc in enumerate(scenarios)
        for b in sc.boluses
    ]
    meals = [
        (i, m.time_min, m.carbs_g / sc.eating_rate_g_per_min, m.carbs_g)
        for i, sc in enumerate(scenarios)
        for m in sorted(sc.meals, key=lambda m: m.time_min)
        if m.carbs_g > 0
    ]
    _lay_events(insulin, every_min, bolus)
    _lay_events(carbs, every_min, meals)
    return insulin, carbs, meals


def plan_inputs(
    patients: Sequence[DiabetesParameters],
    scenarios: Sequence[DiabetesScenario],
    n_minutes: int,
) -> InputPlan:
    """The per-minute inputs of each case over minutes ``0 .. n_minutes - 1``: what
    :func:`plan_delivery` gives, and the size of the meal being digested and the
    carbohydrate announced in each minute."""
    n = len(patients)
    insulin, carbs, meals = _delivery(patients, scenarios, n_minutes)
    plan = InputPlan(
        insulin_u=insulin,
        carbs_g=carbs,
        dose_mg=np.zeros((n, n_minutes)),
        announced_g=np.zeros((n, n_minutes)),
    )

    # Meal size being digested: the latest meal started, else the patient's default.
    plan.dose_mg[:] = np.array([p.dosekempt for p in patients])[:, None]
    if meals:
        case, start, _, grams = (np.array(col) for col in zip(*meals, strict=True))
        first = np.floor(start).astype(int)
        keep = first < n_minutes
        case, first, grams = case[keep], first[keep], grams[keep]
        # Meals are in time order within each case, so a later meal starting in
        # the same minute overwrites an earlier one, as eating order demands.
        size = np.zeros((n, n_minutes))
        started = np.zeros((n, n_minutes), dtype=bool)
        size[case, first] = 1000.0 * grams
        started[case, first] = True
        np.add.at(plan.announced_g, (case, first), grams)
        last = np.where(started, np.arange(n_minutes), -1)
        last = np.maximum.accumulate(last, axis=1)
        rows = np.arange(n)[:, None]
        plan.dose_mg = np.where(
            last >= 0, size[rows, np.maximum(last, 0)], plan.dose_mg
        )
    return plan


def _lay_events(
    target: np.ndarray, every: float, events: list[tuple[int, float, float, float]]
) -> None:
    """Add each ``(case, start, width, amount)`` spread evenly over
    ``[start, start + width)`` to the rows of ``target``, whose column ``k`` is the
    interval ``[k every, (k + 1) every)``, in place.

    Only the intervals an event overlaps are touched: each event is laid on a short
    local grid from the interval it starts in, as long as the longest event.
    """
    if not events:
        return
    if len(events) <= _FEW_EVENTS:
        _lay_few_events(target, every, events)
        return
    case, start, width, amount = (np.array(col) for col in zip(*events, strict=True))
    case = case.astype(int)
    n_intervals = target.shape[1]
    first = np.floor(start / every).astype(int)
    span = int(np.ceil(((start + width) / every - first).max())) + 1
    local = first[:, None] + np.arange(span + 1)
    cumulative = amount[:, None] * np.clip(
        (local * every - start[:, None]) / width[:, None], 0.0, 1.0
    )
    interval = local[:, :-1]
    inside = interval < n_intervals
    flat = (case[:, None] * n_intervals + interval)[inside]
    amounts = np.diff(cumulative, axis=1)[inside]
    target += np.bincount(flat, amounts, minlength=target.size).reshape(target.shape)


# Below this many events, a plain loop is faster than the vectorised layout.
_FEW_EVENTS = 24


def _lay_few_events(
    target: np.ndarray, every: float, events: list[tuple[int, float, float, float]]
) -> None:
    """:func:`_lay_events`, event by event: the same cumulative-difference rule."""
    n_intervals = target.shape[1]
    for case, start, width, amount in events:
        k = math.floor(start / every)
        done = 0.0
        while k < n_intervals:
            share = min(max(((k + 1) * every - start) / width, 0.0), 1.0)
            target[case, k] += amount * share - done
            done = amount * share
            if share >= 1.0:
                break
            k += 1
