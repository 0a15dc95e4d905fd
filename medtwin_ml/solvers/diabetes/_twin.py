"""The diabetes twin: reference and batched simulation, dataset cases, checks."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.integrate import solve_ivp

from medtwin_ml.errors import ConfigError
from medtwin_ml.solvers.diabetes._inputs import (
    Bolus,
    DiabetesDevice,
    DiabetesScenario,
    Meal,
    plan_inputs,
)
from medtwin_ml.solvers.diabetes._integrate import (
    ReferenceStepper,
    Rk4Stepper,
    Trajectories,
    run_cases,
)
from medtwin_ml.solvers.diabetes._model import N_STATES, PMOL_PER_U, rhs, steady_state
from medtwin_ml.solvers.diabetes._parameters import (
    STATE_NAMES,
    DiabetesParameters,
    PatientArrays,
)
from medtwin_ml.solvers.diabetes.outcomes import glycaemic_outcomes
from medtwin_ml.twin import (
    BatchResult,
    Case,
    CheckResult,
    DomainVariable,
    InputDomain,
    TimeSeriesResult,
)

__all__ = [
    "INPUT_DOMAIN",
    "OUTPUT_COLUMNS",
    "STATE_OUTPUTS",
    "cases_from_design",
    "initial_states",
    "run_batch",
    "simulate",
    "simulate_batch",
    "verification",
]

logger = logging.getLogger(__name__)

STATE_OUTPUTS = tuple(
    f"state_{name.lower()}_{unit.replace('/', '_per_').replace('pmol_per_L', 'pmol_l')}"
    for name, unit in STATE_NAMES
)
"""Output names of the 13 states in :data:`STATE_NAMES` order, units in the names."""

OUTPUT_COLUMNS = (
    "plasma_glucose_mg_dl",
    "subcutaneous_glucose_mg_dl",
    "plasma_insulin_pmol_l",
    "insulin_delivered_u",
    "carbs_eaten_g",
)

_MEALS = ("breakfast", "lunch", "dinner")

INPUT_DOMAIN = InputDomain(
    variables=[
        DomainVariable(
            name="basal_scale",
            unit="1",
            low=0.7,
            high=1.3,
            description="basal rate as a multiple of the patient's steady basal",
        ),
        DomainVariable(
            name="bolus_scale",
            unit="1",
            low=0.5,
            high=1.5,
            description="meal bolus as a multiple of carbs / carb ratio",
        ),
        DomainVariable(
            name="breakfast_carbs_g",
            unit="g",
            low=20,
            high=90,
            description="carbohydrate of breakfast",
        ),
        DomainVariable(
            name="lunch_carbs_g",
            unit="g",
            low=30,
            high=120,
            description="carbohydrate of lunch (rice-based Korean meals run high)",
        ),
        DomainVariable(
            name="dinner_carbs_g",
            unit="g",
            low=30,
            high=120,
            description="carbohydrate of dinner",
        ),
        DomainVariable(
            name="breakfast_time_min",
            unit="min",
            low=360,
            high=540,
            description="start of breakfast, minutes after midnight (06:00-09:00)",
        ),
        DomainVariable(
            name="lunch_time_min",
            unit="min",
            low=690,
            high=810,
            description="start of lunch (11:30-13:30)",
        ),
        DomainVariable(
            name="dinner_time_min",
            unit="min",
            low=1020,
            high=1200,
            description="start of dinner (17:00-20:00)",
        ),
    ]
)


def _checked(cases: Sequence[Case]) -> list[Case]:
    cases = list(cases)
    if not cases:
        raise ConfigError("cases", [("cases", "[]", "at least one case")])
    for i, case in enumerate(cases):
        for field, model in (
            ("params", DiabetesParameters),
            ("device", DiabetesDevice),
            ("scenario", DiabetesScenario),
        ):
            value = getattr(case, field)
            if not isinstance(value, model):
                raise ConfigError(
                    f"case {i}", [(field, type(value).__name__, f"a {model.__name__}")]
                )
    durations = sorted({c.scenario.duration_min for c in cases})
    if len(durations) > 1:
        raise ConfigError(
            "cases",
            [("scenario.duration_min", durations, "one duration shared by the batch")],
        )
    return cases


def initial_states(patients: Sequence[DiabetesParameters]) -> np.ndarray:
    """Initial states ``(13, n)``: explicit ones, else the steady state at u2ss."""
    p = PatientArrays.of(list(patients))
    y0 = steady_state(p, p.u2ss)
    for i, patient in enumerate(patients):
        explicit = patient.initial_state()
        if explicit is not None:
            y0[:, i] = explicit
    return y0


def _trajectories(
    cases: list[Case],
    method: Literal["rk4", "reference"],
    substeps: int,
    keep_states: bool = False,
    **kw: Any,
) -> Trajectories:
    patients = [c.params for c in cases]
    n_minutes = cases[0].scenario.duration_min + 1
    p = PatientArrays.of(patients)
    plan = plan_inputs(patients, [c.scenario for c in cases], n_minutes)
    if method == "rk4":
        stepper = Rk4Stepper(p, substeps=substeps)
    elif method == "reference":
        stepper = ReferenceStepper(p, **kw)
    else:
        raise ValueError(f"method {method!r}; expected 'rk4' or 'reference'")
    for i, c in enumerate(cases):
        if c.device.closed_loop and (c.scenario.boluses or c.scenario.basal_u_per_h):
            logger.info(
                "case %s: the %s controller replaces the scenario's insulin",
                i,
                c.device.controller,
            )
    return run_cases(
        patients,
        p,
        initial_states(patients),
        plan,
        [c.device for c in cases],
        stepper,
        keep_states=keep_states,
    )


def _summary(glucose: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(glycaemic_outcomes(glucose, dt_min=1.0))


def run_batch(
    cases: Sequence[Case],
    *,
    method: Literal["rk4", "reference"] = "rk4",
    substeps: int = 2,
    rtol: float = 1e-10,
    keep_states: bool = False,
) -> BatchResult:
    """Simulate many cases at once; they may differ in everything but duration.

    Args:
        cases: the cases; all share ``scenario.duration_min``.
        method: "rk4" (fixed step, vectorised) or "reference" (adaptive DOP853 on
            the whole batch at relative tolerance ``rtol``).
        substeps: RK4 steps per minute.
        keep_states: also return the 13 model states, as outputs named by
            :data:`STATE_OUTPUTS`.

    Returns:
        ``BatchResult`` with ``coords["time_min"]`` of shape ``(T,)``, outputs of
        shape ``(n_cases, T)`` for each of :data:`OUTPUT_COLUMNS` (plus
        ``cgm_mg_dl`` when some case has a CGM, NaN for the others) and one summary
        row of outcome metrics per case.
    """
    cases = _checked(cases)
    if method == "reference":
        traj = _trajectories(cases, method, substeps, keep_states, rtol=rtol)
    else:
        traj = _trajectories(cases, method, substeps, keep_states)
    outputs = {name: getattr(traj, name) for name in OUTPUT_COLUMNS}
    if keep_states:
        for k, name in enumerate(STATE_OUTPUTS):
            outputs[name] = traj.states[:, :, k]
    if any(c.device.cgm_settings() is not None for c in cases):
        outputs["cgm_mg_dl"] = traj.cgm_mg_dl
    time = np.arange(cases[0].scenario.duration_min + 1, dtype=float)
    return BatchResult(
        coords={"time_min": time},
        outputs=outputs,
        summary=_summary(traj.plasma_glucose_mg_dl),
    )


def simulate_batch(cases: Sequence[Case]) -> BatchResult:
    """The batched path: RK4 with two steps per minute, vectorised over cases."""
    return run_batch(cases, method="rk4", substeps=2)


def simulate(case: Case) -> TimeSeriesResult:
    """The reference path: one case, adaptive DOP853 at relative tolerance 1e-10.

    Returns a table with one row per minute from 0 to ``duration_min``: glucose and
    insulin at that minute, insulin delivered and carbohydrate eaten during the
    minute that follows; ``cgm_mg_dl`` (held between samples) when a CGM is on, and
    ``insulin_commanded_u`` in a closed loop. The summary holds the outcome metrics
    of plasma glucose.
    """
    (case,) = _checked([case])
    traj = _trajectories([case], "reference", 1)
    table = pd.DataFrame(
        {"time_min": np.arange(case.scenario.duration_min + 1, dtype=float)}
    )
    for name in OUTPUT_COLUMNS:
        table[name] = getattr(traj, name)[0]
    if case.device.cgm_settings() is not None:
        table["cgm_mg_dl"] = traj.cgm_mg_dl[0]
    if case.device.closed_loop:
        table["insulin_commanded_u"] = traj.insulin_commanded_u[0]
    summary = {
        k: float(v) for k, v in _summary(traj.plasma_glucose_mg_dl).iloc[0].items()
    }
    return TimeSeriesResult(table=table, summary=summary)


def cases_from_design(
    design: pd.DataFrame,
    patients: Sequence[DiabetesParameters],
    options: dict[str, Any] | None = None,
) -> list[Case]:
    """Open-loop cases from rows of a design over :data:`INPUT_DOMAIN`.

    Row ``i`` pairs with ``patients[i]``. Each scenario carries its insulin
    explicitly: the basal rate ``basal_scale`` times the patient's steady basal, and
    at each meal a bolus of ``bolus_scale * carbs / carb ratio`` (the patient's
    ``CR``, else the 500 rule: see ``DiabetesParameters.carb_ratio_g_per_u``).

    Args:
        design: columns named as the domain's variables, one row per case.
        patients: one patient per row.
        options: ``duration_min`` (default 1440), ``eating_rate_g_per_min``
            (default 5).

    Raises:
        ConfigError: if columns are missing, lengths differ or an option is unknown.
    """
    options = dict(options or {})
    unknown = sorted(set(options) - {"duration_min", "eating_rate_g_per_min"})
    if unknown:
        raise ConfigError(
            "options",
            [(k, options[k], "duration_min or eating_rate_g_per_min") for k in unknown],
        )
    missing = [name for name in INPUT_DOMAIN.names if name not in design.columns]
    if missing:
        raise ConfigError(
            "design", [(name, "(missing)", "a column") for name in missing]
        )
    if len(design) != len(patients):
        raise ConfigError(
            "design",
            [("rows", len(design), f"one row per patient ({len(patients)})")],
        )
    duration = int(options.get("duration_min", 1440))
    rate = float(options.get("eating_rate_g_per_min", 5.0))
    device = DiabetesDevice()
    cases = []
    for row, patient in zip(design.to_dict("records"), patients, strict=True):
        basal = float(row["basal_scale"]) * patient.basal_u_per_h
        ratio = patient.carb_ratio_g_per_u
        meals, boluses = [], []
        for meal in _MEALS:
            t, carbs = float(row[f"{meal}_time_min"]), float(row[f"{meal}_carbs_g"])
            meals.append(Meal(time_min=t, carbs_g=carbs))
            boluses.append(
                Bolus(time_min=t, units=float(row["bolus_scale"]) * carbs / ratio)
            )
        scenario = DiabetesScenario(
            duration_min=duration,
            meals=meals,
            eating_rate_g_per_min=rate,
            basal_u_per_h=basal,
            boluses=boluses,
        )
        cases.append(Case(params=patient, device=device, scenario=scenario))
    return cases


# Verification ------------------------------------------------------------------


def _basal_drift(patients: list[DiabetesParameters], hours: float = 24) -> np.ndarray:
    """Largest |G - Gb| over ``hours`` of fasting at u2ss, per patient [mg/dL]."""
    scenario = DiabetesScenario(duration_min=int(60 * hours))
    cases = [
        Case(params=p, device=DiabetesDevice(), scenario=scenario) for p in patients
    ]
    glucose = run_batch(cases, method="reference").outputs["plasma_glucose_mg_dl"]
    gb = np.array([p.Gb for p in patients])[:, None]
    return np.max(np.abs(glucose - gb), axis=1)


def carb_appearance_fraction(
    patient: DiabetesParameters, carbs_g: float, hours: float = 24, rate: float = 5.0
) -> float:
    """Glucose appearing in plasma over ``hours`` after a meal, per glucose eaten.

    Integrates the rate of appearance ``f * kabs * Qgut`` (mg/min) as a fifteenth
    state with DOP853 at relative tolerance 1e-11; the model predicts ``f``.
    """
    p = PatientArrays.of([patient])
    y0 = np.append(initial_states([patient])[:, 0], 0.0)
    dose = np.array([1000.0 * carbs_g])
    u = p.u2ss

    def f(meal_mg_min: float):
        def g(_t: float, y: np.ndarray) -> np.ndarray:
            dy = rhs(y[:N_STATES, None], u, np.array([meal_mg_min]), dose, p)[:, 0]
            return np.append(dy, p.f[0] * p.kabs[0] * y[2])

        return g

    t_eat = carbs_g / rate
    first = solve_ivp(
        f(1000.0 * rate), (0, t_eat), y0, method="DOP853", rtol=1e-11, atol=1e-9
    )
    second = solve_ivp(
        f(0.0),
        (t_eat, 60 * hours),
        first.y[:, -1],
        method="DOP853",
        rtol=1e-11,
        atol=1e-9,
    )
    return float(second.y[-1, -1] / (1000.0 * carbs_g))


def _meal_case(patient: DiabetesParameters, duration_min: int = 480) -> Case:
    scenario = DiabetesScenario(
        duration_min=duration_min,
        meals=[Meal(time_min=60, carbs_g=50)],
        boluses=[Bolus(time_min=60, units=5)],
    )
    return Case(params=patient, device=DiabetesDevice(), scenario=scenario)


def tolerance_errors(
    patient: DiabetesParameters, rtols: Sequence[float] = (1e-5, 1e-7, 1e-9)
) -> list[float]:
    """Max |G - G_ref| [mg/dL] of a meal-and-bolus case at each ``rtol``.

    The reference is the same case at relative tolerance 1e-12.
    """
    case = [_meal_case(patient)]
    best = run_batch(case, method="reference", rtol=1e-12).outputs[
        "plasma_glucose_mg_dl"
    ]
    errors = []
    for rtol in rtols:
        g = run_batch(case, method="reference", rtol=rtol).outputs[
            "plasma_glucose_mg_dl"
        ]
        errors.append(float(np.max(np.abs(g - best))))
    return errors


def verification() -> list[CheckResult]:
    """The solver's own checks, in a few seconds.

    * basal drift: one published patient of each group fasts 24 h at u2ss; glucose
      must stay within 0.5 mg/dL of Gb;
    * tolerance convergence: a 50 g meal with a 5 U bolus at relative tolerances
      1e-5, 1e-7, 1e-9 against 1e-12; errors must fall and end below 1e-3 mg/dL;
    * carbohydrate appearance: the appearance of a 50 g meal integrates to ``f``
      times the glucose eaten within 1e-6.
    """
    from medtwin_ml.cohorts.diabetes import published_patients

    probes = [published_patients(g)[0] for g in ("adult", "adolescent", "child")]
    drift = _basal_drift(probes)
    checks = [
        CheckResult(
            name="basal_drift_mg_dl",
            passed=bool(np.all(drift < 0.5)),
            measured=float(drift.max()),
            tolerance=0.5,
            detail="24 h fasting at u2ss, " + ", ".join(p.Name or "?" for p in probes),
        )
    ]
    errors = tolerance_errors(probes[0])
    falling = all(b < a for a, b in itertools.pairwise(errors))
    checks.append(
        CheckResult(
            name="tolerance_convergence_mg_dl",
            passed=falling and errors[-1] < 1e-3,
            measured=errors[-1],
            tolerance=1e-3,
            detail=f"max |G - G(rtol 1e-12)| at rtol 1e-5, 1e-7, 1e-9: {errors}",
        )
    )
    fraction = carb_appearance_fraction(probes[0], 50.0)
    gap = abs(fraction - probes[0].f)
    checks.append(
        CheckResult(
            name="carb_appearance_fraction",
            passed=gap < 1e-6,
            measured=gap,
            tolerance=1e-6,
            detail=f"appeared / eaten = {fraction:.9f}, f = {probes[0].f}",
        )
    )
    return checks


def patient_basal_u_per_h(patients: Sequence[DiabetesParameters]) -> np.ndarray:
    """Steady basal rates [U/h], shape ``(n,)``."""
    return np.array([p.u2ss * p.BW * 60.0 / PMOL_PER_U for p in patients])
