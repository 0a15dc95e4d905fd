"""The knee-joint solver, vectorised over a batch of cases.

State per case, shape ``(batch, 6)``: knee angle ``theta`` (rad), angular velocity
``omega`` (rad/s), extensor and flexor activation, extensor and flexor fiber length
(normalised by the optimal fiber length). The joint obeys::

    I theta'' = r_e F_e - r_f F_f + tau_exo - m g d sin(theta) - b theta' - tau_lim

where ``F`` are tendon forces of the two Hill-type units and ``tau_lim`` the soft
end-of-range torque. Inputs, held over each output interval: the two excitations
and the scheduled exoskeleton torque.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from medtwin_ml.devices.exoskeleton import exoskeleton_torque
from medtwin_ml.devices.fes import fes_excitation
from medtwin_ml.solvers._integrate import rk4
from medtwin_ml.solvers.musculoskeletal import _muscle as mu
from medtwin_ml.solvers.musculoskeletal._models import (
    MusculoskeletalDevice,
    MusculoskeletalParameters,
    MusculoskeletalScenario,
)
from medtwin_ml.twin import BatchResult, Case, TimeSeriesResult, shared_scenario

__all__ = ["OUTPUT_COLUMNS", "simulate", "simulate_batch"]

logger = logging.getLogger(__name__)

GRAVITY_M_S2 = 9.81
# Largest RK4 step. The stiffest mode is the passive fiber pulled by the linear part
# of its tendon, time constant beta * l_slack / (K_lin * v_max * l_opt) (s, v_max in
# l_opt/s). The parameters refuse a time constant below MIN_FIBER_TAU_S; RK4 is
# stable up to 2.785 time constants (0.78 ms), and a 0.5 ms step keeps a margin.
MAX_STEP_S = 5e-4
# Soft end-of-range torque: LIMIT_NM * exp(LIMIT_PER_RAD * overshoot), both ends.
LIMIT_NM = 1.0
LIMIT_PER_RAD = 10.0

OUTPUT_COLUMNS = (
    "knee_angle_deg",
    "knee_velocity_deg_s",
    "extensor_force_n",
    "flexor_force_n",
    "extensor_activation",
    "flexor_activation",
    "extensor_excitation",
    "flexor_excitation",
    "muscle_torque_nm",
    "exo_torque_nm",
)

_MUSCLES = ("extensor", "flexor")
_SIGN = np.array([1.0, -1.0])  # extensor extends the knee, flexor flexes it


class _Batch:
    """Per-case constants as arrays: scalars ``(batch,)``, per muscle ``(batch, 2)``."""

    def __init__(
        self,
        params: Sequence[MusculoskeletalParameters],
        devices: Sequence[MusculoskeletalDevice],
    ):
        def col(name: str) -> np.ndarray:
            return np.array([getattr(p, name) for p in params], dtype=float)

        def pair(name: str) -> np.ndarray:
            return np.stack([col(f"{m}_{name}") for m in _MUSCLES], axis=1)

        def dev(name: str) -> np.ndarray:
            return np.array([getattr(d, name) for d in devices], dtype=float)

        self.mass = col("shank_foot_mass_kg")
        self.com = col("com_distance_m")
        self.inertia = col("inertia_kg_m2")
        self.damping = col("joint_damping_nm_s_per_rad")
        self.theta_max = np.radians(col("extension_limit_deg"))
        self.theta_min = np.radians(col("flexion_limit_deg"))
        self.f0 = pair("max_force_n")
        self.l_opt = pair("optimal_fiber_length_m")
        self.l_slack = pair("tendon_slack_length_m")
        self.sin_a0 = np.sin(np.radians(pair("pennation_deg")))
        self.r = pair("moment_arm_m")
        self.theta_opt = np.radians(pair("optimal_angle_deg"))
        self.vmax = pair("vmax_lopt_per_s")
        self.beta = pair("fiber_damping")
        self.tau_act = pair("tau_act_ms") * 1e-3
        self.tau_deact = pair("tau_deact_ms") * 1e-3
        # Muscle-tendon length at the optimal angle: slack tendon, optimal fiber.
        self.l_mt_opt = self.l_slack + self.l_opt * np.sqrt(1.0 - self.sin_a0**2)
        self.exo_k = dev("exo_stiffness_nm_per_rad")
        self.exo_d = dev("exo_damping_nm_s_per_rad")
        self.exo_target = np.radians(dev("exo_target_angle_deg"))
        self.exo_max = dev("exo_max_torque_nm")

    def mtu_length(self, theta: np.ndarray) -> np.ndarray:
        """Muscle-tendon lengths (m), ``(..., 2)`` for ``theta`` of shape ``(...)``."""
        return self.l_mt_opt + _SIGN * self.r * (self.theta_opt - theta[..., None])

    def tendon_force(
        self, theta: np.ndarray, l_norm: np.ndarray, cos_a: np.ndarray | None = None
    ) -> np.ndarray:
        """Tendon forces as fractions of F0, ``(..., 2)``."""
        if cos_a is None:
            cos_a = mu.pennation_cos(l_norm, self.sin_a0)
        l_t = self.mtu_length(theta) - l_norm * self.l_opt * cos_a
        return mu.tendon_force_strain((l_t - self.l_slack) / self.l_slack)

    def exo(self, theta, omega, scheduled):
        return exoskeleton_torque(
            theta,
            omega,
            scheduled,
            self.exo_k,
            self.exo_d,
            self.exo_target,
            self.exo_max,
        )

    def rhs(self, t: float, y: np.ndarray, u: np.ndarray) -> np.ndarray:
        theta, omega = y[:, 0], y[:, 1]
        a, l_norm = y[:, 2:4], y[:, 4:6]
        cos_a = mu.pennation_cos(l_norm, self.sin_a0)
        f_t = self.tendon_force(theta, l_norm, cos_a)
        v = mu.fiber_velocity(a, l_norm, f_t, self.sin_a0, self.beta, cos_a)
        muscle = np.sum(_SIGN * self.r * self.f0 * f_t, axis=1)
        limits = LIMIT_NM * (
            np.exp(LIMIT_PER_RAD * (theta - self.theta_max))
            - np.exp(LIMIT_PER_RAD * (self.theta_min - theta))
        )
        torque = (
            muscle
            + self.exo(theta, omega, u[:, 2])
            - self.mass * GRAVITY_M_S2 * self.com * np.sin(theta)
            - self.damping * omega
            - limits
        )
        dy = np.empty_like(y)
        dy[:, 0] = omega
        dy[:, 1] = torque / self.inertia
        dy[:, 2:4] = mu.activation_rate(u[:, :2], a, self.tau_act, self.tau_deact)
        dy[:, 4:6] = v * self.vmax
        return dy

    def resting_fiber_length(self, theta: np.ndarray) -> np.ndarray:
        """Fiber lengths in passive equilibrium with the tendon, ``(batch, 2)``.

        Bisection on ``fT(strain(l)) - fPE(l) cos(alpha(l))``, which falls as the
        fiber lengthens; where both are slack it returns the longest fiber that
        leaves the tendon slack.
        """
        lo = np.broadcast_to(self.sin_a0 / mu.MAX_SIN_PENNATION, self.f0.shape).copy()
        hi = np.full_like(lo, 2.5)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            excess = self.tendon_force(theta, mid) - mu.passive_force_length(
                mid
            ) * mu.pennation_cos(mid, self.sin_a0)
            lo = np.where(excess > 0, mid, lo)
            hi = np.where(excess > 0, hi, mid)
        return 0.5 * (lo + hi)


def _overlap(blocks, t: np.ndarray) -> np.ndarray:
    """Fraction of each interval ``[t[k], t[k+1])`` each block covers, ``(n, T-1)``."""
    out = np.zeros((len(blocks), t.size - 1))
    for i, b in enumerate(blocks):
        start, end = b.start_s, b.start_s + b.duration_s
        covered = np.clip(np.minimum(t[1:], end) - np.maximum(t[:-1], start), 0, None)
        out[i] = covered / np.diff(t)
    return out


def _inputs(case: Case, t: np.ndarray) -> np.ndarray:
    """Excitations and scheduled torque per output interval, ``(T-1, 3)``."""
    d: MusculoskeletalDevice = case.device
    s: MusculoskeletalScenario = case.scenario
    u = np.zeros((t.size - 1, 3))
    if s.stimulation:
        frac = _overlap(s.stimulation, t)
        pw = np.array([b.pulse_width_us for b in s.stimulation])
        level = fes_excitation(
            pw,
            d.amplitude_ma,
            d.frequency_hz,
            d.threshold_charge_uc,
            d.saturation_charge_uc,
            d.max_excitation,
        )
        k = _MUSCLES.index(d.stim_muscle)
        u[:, k] = np.clip(level @ frac, 0.0, 1.0)
    if s.exo_torque:
        frac = _overlap(s.exo_torque, t)
        u[:, 2] = np.array([b.torque_nm for b in s.exo_torque]) @ frac
    return u


def _grid(cases: Sequence[Case]) -> tuple[np.ndarray, int]:
    first = shared_scenario(cases, ("duration_s", "output_interval_s"))
    n = round(first.duration_s / first.output_interval_s)
    t = np.linspace(0.0, first.duration_s, n + 1)
    substeps = max(1, math.ceil(first.output_interval_s / MAX_STEP_S - 1e-9))
    return t, substeps


def _check_cases(cases: Sequence[Case]) -> None:
    if len(cases) == 0:
        raise ValueError("no cases given; expected at least one")
    for i, c in enumerate(cases):
        for part, model in (
            ("params", MusculoskeletalParameters),
            ("device", MusculoskeletalDevice),
            ("scenario", MusculoskeletalScenario),
        ):
            got = getattr(c, part)
            if not isinstance(got, model):
                raise TypeError(
                    f"case {i}: {part} is {type(got).__name__}; "
                    f"expected {model.__name__}"
                )


def _solve(cases: Sequence[Case]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    _check_cases(cases)
    t, substeps = _grid(cases)
    batch = _Batch([c.params for c in cases], [c.device for c in cases])
    u = np.stack([_inputs(c, t) for c in cases])

    theta0 = np.radians([c.scenario.initial_angle_deg for c in cases])
    omega0 = np.radians([c.scenario.initial_velocity_deg_s for c in cases])
    y0 = np.zeros((len(cases), 6))
    y0[:, 0], y0[:, 1] = theta0, omega0
    y0[:, 4:6] = batch.resting_fiber_length(theta0)
    logger.debug("musculoskeletal: %s cases, %s steps", len(cases), t.size * substeps)
    y = rk4(batch.rhs, y0, t, inputs=u, substeps=substeps)
    return t, _outputs(batch, y, u)


def _outputs(batch: _Batch, y: np.ndarray, u: np.ndarray) -> dict[str, np.ndarray]:
    """Output arrays ``(batch, time)`` from states ``(batch, time, 6)``."""
    theta, omega = y[..., 0], y[..., 1]
    f0 = batch.f0[:, None, :]
    force = f0 * _tendon_force_series(batch, theta, y[..., 4:6])
    r = batch.r[:, None, :]
    # Inputs hold over [t[k], t[k+1]); the value at the last time repeats the last.
    u_t = np.concatenate([u, u[:, -1:]], axis=1)
    exo = exoskeleton_torque(
        theta,
        omega,
        u_t[..., 2],
        batch.exo_k[:, None],
        batch.exo_d[:, None],
        batch.exo_target[:, None],
        batch.exo_max[:, None],
    )
    return {
        "knee_angle_deg": np.degrees(theta),
        "knee_velocity_deg_s": np.degrees(omega),
        "extensor_force_n": force[..., 0],
        "flexor_force_n": force[..., 1],
        "extensor_activation": y[..., 2],
        "flexor_activation": y[..., 3],
        "extensor_excitation": u_t[..., 0],
        "flexor_excitation": u_t[..., 1],
        "muscle_torque_nm": np.sum(_SIGN * r * force, axis=-1),
        "exo_torque_nm": exo,
    }


def _tendon_force_series(batch: _Batch, theta: np.ndarray, l_norm: np.ndarray):
    cos_a = mu.pennation_cos(l_norm, batch.sin_a0[:, None, :])
    l_mt = batch.l_mt_opt[:, None, :] + _SIGN * batch.r[:, None, :] * (
        batch.theta_opt[:, None, :] - theta[..., None]
    )
    l_t = l_mt - l_norm * batch.l_opt[:, None, :] * cos_a
    slack = batch.l_slack[:, None, :]
    return mu.tendon_force_strain((l_t - slack) / slack)


def _summary(t: np.ndarray, out: dict[str, np.ndarray]) -> pd.DataFrame:
    angle = out["knee_angle_deg"]
    return pd.DataFrame(
        {
            "peak_angle_deg": angle.max(axis=1),
            "min_angle_deg": angle.min(axis=1),
            "final_angle_deg": angle[:, -1],
            "range_of_motion_deg": angle.max(axis=1) - angle.min(axis=1),
            "time_to_peak_angle_s": t[np.argmax(angle, axis=1)],
            "peak_extensor_force_n": out["extensor_force_n"].max(axis=1),
            "peak_flexor_force_n": out["flexor_force_n"].max(axis=1),
            "peak_extensor_activation": out["extensor_activation"].max(axis=1),
            "peak_abs_exo_torque_nm": np.abs(out["exo_torque_nm"]).max(axis=1),
        }
    )


def simulate_batch(cases: Sequence[Case]) -> BatchResult:
    """Solve many cases at once.

    Cases may differ in patient, device and schedule but must share ``duration_s``
    and ``output_interval_s``.

    Returns:
        ``coords = {"time_s": (T,)}``, one ``(n_cases, T)`` array per name in
        :data:`OUTPUT_COLUMNS`, and the per-case summary (one row per case).
    """
    t, out = _solve(cases)
    return BatchResult(coords={"time_s": t}, outputs=out, summary=_summary(t, out))


def simulate(case: Case) -> TimeSeriesResult:
    """Solve one case: a table with ``time_s`` first, one row per output time."""
    t, out = _solve([case])
    table = pd.DataFrame({"time_s": t} | {k: v[0] for k, v in out.items()})
    summary = {k: float(v) for k, v in _summary(t, out).iloc[0].items()}
    return TimeSeriesResult(table=table, summary=summary)
