"""Reference and batched integration of many diabetes cases, open or closed loop.

Two steppers advance the states ``(13, n)`` of ``n`` cases over whole minutes with
the inputs of each minute held constant:

* :class:`ReferenceStepper`: SciPy's adaptive Dormand-Prince 8(5,3) (``DOP853``) on
  the flattened system at tight tolerance (relative 1e-10 by default). Step-size
  control is componentwise, so every case meets the tolerance whatever the others do.
  In open loop it integrates straight across every stretch of minutes whose inputs do
  not change.
* :class:`Rk4Stepper`: classical fourth-order Runge-Kutta with a fixed number of
  substeps per minute, in plain NumPy over the whole batch: the fast path for
  datasets.

The closed-loop machinery needs to stop every minute to read the CGM and ask the
controller, which is why this module steps minute by minute itself instead of using
the whole-horizon RK4 of :mod:`medtwin_ml.solvers._integrate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.integrate import solve_ivp

from medtwin_ml.devices.cgm import CgmSettings, cgm_noise_mg_dl
from medtwin_ml.devices.glucose_controllers import BasalBolusController, PidController
from medtwin_ml.devices.insulin_pump import deliver_basal_u_per_h, deliver_bolus_u
from medtwin_ml.errors import SimulationError
from medtwin_ml.solvers.diabetes._inputs import DiabetesDevice, InputPlan
from medtwin_ml.solvers.diabetes._model import N_STATES, PMOL_PER_U, rhs
from medtwin_ml.solvers.diabetes._parameters import DiabetesParameters, PatientArrays

__all__ = ["ReferenceStepper", "Rk4Stepper", "Trajectories", "run_cases"]


class Stepper(Protocol):
    merge_constant_minutes: bool

    def advance(
        self, y: np.ndarray, inputs: tuple[np.ndarray, ...], k0: int, k1: int
    ) -> np.ndarray:
        """States at minutes ``k0 + 1 .. k1``, shape ``(k1 - k0, 13, n)``."""
        ...


@dataclass
class Rk4Stepper:
    """Fixed-step RK4 with ``substeps`` steps per minute, vectorised over cases."""

    p: PatientArrays
    substeps: int = 2
    merge_constant_minutes: bool = False

    def advance(
        self, y: np.ndarray, inputs: tuple[np.ndarray, ...], k0: int, k1: int
    ) -> np.ndarray:
        u, meal, dose = inputs
        h = 1.0 / self.substeps
        out = np.empty((k1 - k0, *y.shape))
        k1v = np.empty_like(y)
        k2v = np.empty_like(y)
        k3v = np.empty_like(y)
        k4v = np.empty_like(y)
        for m in range(k1 - k0):
            for _ in range(self.substeps):
                rhs(y, u, meal, dose, self.p, k1v)
                rhs(y + 0.5 * h * k1v, u, meal, dose, self.p, k2v)
                rhs(y + 0.5 * h * k2v, u, meal, dose, self.p, k3v)
                rhs(y + h * k3v, u, meal, dose, self.p, k4v)
                y = y + (h / 6.0) * (k1v + 2.0 * (k2v + k3v) + k4v)
            out[m] = y
        return out


@dataclass
class ReferenceStepper:
    """Adaptive ``DOP853`` at relative tolerance ``rtol`` over the whole batch."""

    p: PatientArrays
    rtol: float = 1e-10
    atol: float = 1e-9
    merge_constant_minutes: bool = True

    def advance(
        self, y: np.ndarray, inputs: tuple[np.ndarray, ...], k0: int, k1: int
    ) -> np.ndarray:
        u, meal, dose = inputs
        n = y.shape[1]

        def f(_t: float, flat: np.ndarray) -> np.ndarray:
            return rhs(flat.reshape(N_STATES, n), u, meal, dose, self.p).ravel()

        t_eval = np.arange(k0 + 1, k1 + 1, dtype=float)
        sol = solve_ivp(
            f,
            (float(k0), float(k1)),
            y.ravel(),
            method="DOP853",
            t_eval=t_eval,
            rtol=self.rtol,
            atol=self.atol,
        )
        if not sol.success:
            raise SimulationError(
                f"the reference integrator failed between minutes {k0} and {k1}: "
                f"{sol.message}"
            )
        return sol.y.T.reshape(k1 - k0, N_STATES, n)


@dataclass
class Trajectories:
    """Per-minute outputs of ``n`` cases, each array ``(n, T)``.

    ``states`` holds every state, ``(n, T, 13)``, only when asked for.
    """

    plasma_glucose_mg_dl: np.ndarray
    subcutaneous_glucose_mg_dl: np.ndarray
    plasma_insulin_pmol_l: np.ndarray
    insulin_delivered_u: np.ndarray
    insulin_commanded_u: np.ndarray
    carbs_eaten_g: np.ndarray
    cgm_mg_dl: np.ndarray
    states: np.ndarray | None = None


class _Cgm:
    """The CGMs of all cases: noise per minute (held between samples), sample masks."""

    def __init__(self, devices: Sequence[DiabetesDevice], n_minutes: int):
        n = len(devices)
        self.settings: list[CgmSettings | None] = [d.cgm_settings() for d in devices]
        self.noise = np.zeros((n, n_minutes))
        self.sample = np.zeros((n, n_minutes), dtype=bool)
        self.low = np.full(n, -np.inf)
        self.high = np.full(n, np.inf)
        minutes = np.arange(n_minutes)
        for i, (s, d) in enumerate(zip(self.settings, devices, strict=True)):
            if s is None:
                continue
            noise = cgm_noise_mg_dl(s, n_minutes - 1, d.seed)
            period = s.sample_period_min
            self.sample[i] = minutes % period == 0
            self.noise[i] = noise[minutes // period]
            self.low[i], self.high[i] = s.min_mg_dl, s.max_mg_dl
        self.present = np.array([s is not None for s in self.settings], dtype=bool)

    def read(self, gs_mg_dl: np.ndarray, k: int) -> np.ndarray:
        """Readings at minute ``k`` for every case (meaningful where ``sample``)."""
        return np.clip(gs_mg_dl + self.noise[:, k], self.low, self.high)

    def table(self, gs_mg_dl: np.ndarray) -> np.ndarray:
        """Held readings, shape ``(n, T)``; NaN for cases without a CGM."""
        _n, t = gs_mg_dl.shape
        fresh = np.clip(gs_mg_dl + self.noise, self.low[:, None], self.high[:, None])
        index = np.where(self.sample, np.arange(t)[None, :], 0)
        index = np.maximum.accumulate(index, axis=1)
        held = np.take_along_axis(fresh, index, axis=1)
        held[~self.present] = np.nan
        return held


def _controllers(
    devices: Sequence[DiabetesDevice],
    patients: Sequence[DiabetesParameters],
) -> list[tuple[np.ndarray, BasalBolusController | PidController]]:
    basal = np.array([q.basal_u_per_h for q in patients])
    ratio = np.array([q.carb_ratio_g_per_u for q in patients])
    factor = np.array([q.correction_factor_mg_dl_per_u for q in patients])
    groups = []
    for name in ("basal_bolus", "pid"):
        idx = np.array(
            [i for i, d in enumerate(devices) if d.controller == name], dtype=int
        )
        if idx.size == 0:
            continue
        if name == "basal_bolus":
            ctrl = BasalBolusController(
                [devices[i].basal_bolus for i in idx],
                basal[idx],
                ratio[idx],
                factor[idx],
            )
        else:
            ctrl = PidController([devices[i].pid for i in idx], basal[idx], factor[idx])
        groups.append((idx, ctrl))
    return groups


def _segments(plan: InputPlan, n_minutes: int) -> list[int]:
    """Minutes at which some input changes, with 0 and the last minute."""
    change = np.zeros(n_minutes, dtype=bool)
    change[0] = True
    for a in (plan.insulin_u, plan.carbs_g, plan.dose_mg):
        change[1:] |= np.any(a[:, 1:] != a[:, :-1], axis=0)
    starts = np.flatnonzero(change[:-1]).tolist()
    return [*starts, n_minutes - 1]


def run_cases(
    patients: Sequence[DiabetesParameters],
    p: PatientArrays,
    y0: np.ndarray,
    plan: InputPlan,
    devices: Sequence[DiabetesDevice],
    stepper: Stepper,
    *,
    keep_states: bool = False,
) -> Trajectories:
    """Integrate ``n`` cases over the plan's minutes, opening or closing each loop.

    Args:
        patients: the patients (their therapy settings feed the controllers).
        p: the same patients as arrays ``(n,)``.
        y0: initial states, ``(13, n)``.
        plan: per-minute inputs, arrays ``(n, T)``; rows of closed-loop cases have
            their insulin replaced by what the pump delivers.
        devices: one device per case.
        stepper: how to advance the states over whole minutes.
        keep_states: also return every state at every minute.

    Returns:
        The per-minute outputs; row ``k`` is the state at minute ``k`` and the
        amounts delivered or eaten during ``[k, k + 1)``.
    """
    n, n_minutes = plan.insulin_u.shape
    cgm = _Cgm(devices, n_minutes)
    groups = _controllers(devices, patients)
    insulin = plan.insulin_u.copy()
    commanded = plan.insulin_u.copy()
    pumps = [d.pump for d in devices]

    gp = np.empty((n, n_minutes))
    gs = np.empty((n, n_minutes))
    ip = np.empty((n, n_minutes))
    states = np.empty((n, n_minutes, N_STATES)) if keep_states else None

    def record(k: int, y: np.ndarray) -> None:
        gp[:, k], ip[:, k], gs[:, k] = y[3], y[5], y[12]
        if states is not None:
            states[:, k] = y.T

    if groups or not stepper.merge_constant_minutes:
        stops = list(range(n_minutes))
    else:
        stops = _segments(plan, n_minutes)

    y = np.array(y0, dtype=float)
    record(0, y)
    held = np.full(n, np.nan)
    for j, k0 in enumerate(stops):
        if groups:
            reading = cgm.read(y[12] / p.Vg, k0)
            held = np.where(cgm.sample[:, k0], reading, held)
            for idx, ctrl in groups:
                basal, bolus = ctrl.act(
                    float(k0), held[idx], cgm.sample[idx, k0], plan.announced_g[idx, k0]
                )
                group_pumps = [pumps[i] for i in idx]
                delivered = deliver_basal_u_per_h(basal, group_pumps) / 60.0
                delivered += deliver_bolus_u(bolus, group_pumps)
                insulin[idx, k0] = delivered
                commanded[idx, k0] = basal / 60.0 + bolus
        if j + 1 == len(stops):
            break
        k1 = stops[j + 1]
        inputs = (
            insulin[:, k0] * PMOL_PER_U / p.BW,
            plan.carbs_g[:, k0] * 1000.0,
            plan.dose_mg[:, k0],
        )
        ys = stepper.advance(y, inputs, k0, k1)
        for m, k in enumerate(range(k0 + 1, k1 + 1)):
            record(k, ys[m])
        y = ys[-1]
        if not np.all(np.isfinite(y)):
            bad = np.flatnonzero(~np.all(np.isfinite(y), axis=0)).tolist()
            raise SimulationError(f"cases {bad} diverged before minute {k1}")

    vg = p.Vg[:, None]
    return Trajectories(
        plasma_glucose_mg_dl=gp / vg,
        subcutaneous_glucose_mg_dl=gs / vg,
        plasma_insulin_pmol_l=ip / p.Vi[:, None],
        insulin_delivered_u=insulin,
        insulin_commanded_u=commanded,
        carbs_eaten_g=plan.carbs_g.copy(),
        cgm_mg_dl=cgm.table(gs / vg),
        states=states,
    )
