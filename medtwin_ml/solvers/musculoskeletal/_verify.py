"""Checks of the musculoskeletal solver against exact results."""

from __future__ import annotations

import numpy as np
from scipy.special import ellipk

from medtwin_ml.solvers._integrate import rk4
from medtwin_ml.solvers.musculoskeletal import _muscle as mu
from medtwin_ml.solvers.musculoskeletal._models import (
    MusculoskeletalDevice,
    MusculoskeletalParameters,
)
from medtwin_ml.solvers.musculoskeletal._solver import MAX_STEP_S, _Batch
from medtwin_ml.twin import CheckResult

__all__ = ["verification"]


def check_isometric_optimal() -> CheckResult:
    """Rigid tendon, isometric, optimal length, no pennation: ``F = a F0`` exactly."""
    f0 = MusculoskeletalParameters().extensor_max_force_n
    a = np.linspace(0.0, 1.0, 11)
    force = f0 * mu.hill_tendon_force(a, np.ones_like(a), np.zeros_like(a), 0.0, 0.1)
    err = float(np.max(np.abs(force - a * f0)) / f0)
    return CheckResult(
        "hill_isometric_force_equals_a_f0",
        err <= 1e-12,
        err,
        1e-12,
        "max |F - a F0| / F0 over a in [0, 1]; exact up to rounding",
    )


def check_activation_step() -> CheckResult:
    """Excitation step 0 -> 1 then 1 -> 0 against ``exp(-t / tau)``."""
    tau_act, tau_deact = 0.015, 0.060
    t = np.linspace(0.0, 0.4, 401)
    u = np.where(t[:-1] < 0.2, 1.0, 0.0)[None, :, None]

    def rhs(_t, y, u_k):
        return mu.activation_rate(u_k, y, tau_act, tau_deact)

    substeps = round(1e-3 / MAX_STEP_S)
    a = rk4(rhs, np.zeros((1, 1)), t, inputs=u, substeps=substeps)[0, :, 0]
    a_on = 1.0 - np.exp(-t / tau_act)
    a_end = a_on[200]
    exact = np.where(t <= 0.2, a_on, a_end * np.exp(-(t - 0.2) / tau_deact))
    err = float(np.max(np.abs(a - exact)))
    # RK4's global error at h / tau = 1/30 is of order (h / tau)^4 / 120 ~ 1e-8.
    return CheckResult(
        "activation_step_response",
        err <= 1e-6,
        err,
        1e-6,
        "max |a - exact| for tau_act 15 ms and tau_deact 60 ms at the solver's step",
    )


def check_fiber_velocity_balance(seed: int = 0) -> CheckResult:
    """The closed-form fiber velocity satisfies the force balance it solves."""
    rng = np.random.default_rng(seed)
    n = 2000
    a = rng.uniform(0.0, 1.0, n)
    l_norm = rng.uniform(0.5, 1.6, n)
    f_t = rng.uniform(0.0, 2.0, n)
    sin0 = np.sin(np.radians(rng.uniform(0.0, 30.0, n)))
    beta = rng.uniform(0.05, 1.0, n)
    v = mu.fiber_velocity(a, l_norm, f_t, sin0, beta)
    resid = mu.hill_tendon_force(a, l_norm, v, sin0, beta) - f_t
    err = float(np.max(np.abs(resid)))
    return CheckResult(
        "fiber_velocity_closed_form_balance",
        err <= 1e-9,
        err,
        1e-9,
        "max force residual (fraction of F0) over random states",
    )


def check_compliant_isometric() -> CheckResult:
    """A held joint settles where tendon force equals projected fiber force.

    The settling time constant is about 10 ms here, so 0.3 s leaves ``e^-30``.
    """
    params = MusculoskeletalParameters()
    batch = _Batch([params], [MusculoskeletalDevice()])
    theta = np.array([np.radians(-30.0)])
    activation = 0.5

    def rhs(_t, y, _u):
        cos_a = mu.pennation_cos(y, batch.sin_a0)
        f_t = batch.tendon_force(theta, y, cos_a)
        act = np.full_like(y, activation)
        v = mu.fiber_velocity(act, y, f_t, batch.sin_a0, batch.beta, cos_a)
        return v * batch.vmax

    y0 = batch.resting_fiber_length(theta)
    t = np.linspace(0.0, 0.3, 31)
    l_end = rk4(rhs, y0, t, substeps=round(0.01 / MAX_STEP_S))[:, -1]
    f_dyn = batch.tendon_force(theta, l_end)

    lo, hi = np.full((1, 2), 0.5), np.full((1, 2), 2.0)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        excess = batch.tendon_force(theta, mid) - mu.hill_tendon_force(
            activation, mid, 0.0, batch.sin_a0, 0.0
        )
        lo, hi = np.where(excess > 0, mid, lo), np.where(excess > 0, hi, mid)
    f_static = batch.tendon_force(theta, 0.5 * (lo + hi))
    # The extensor is stretched at this angle; the flexor is slack and pulls nothing.
    err = float(abs(f_dyn[0, 0] - f_static[0, 0]) / f_static[0, 0])
    return CheckResult(
        "compliant_tendon_isometric_equilibrium",
        err <= 1e-6,
        err,
        1e-6,
        "relative tendon-force gap between the settled solver and the static balance "
        "at theta = -30 deg, a = 0.5",
    )


def check_pendulum_period(amplitude_deg: float = 30.0) -> CheckResult:
    """Undamped swing without muscles: the exact pendulum period."""
    params = MusculoskeletalParameters(joint_damping_nm_s_per_rad=0.0)
    batch = _Batch([params], [MusculoskeletalDevice()])
    batch.f0 = np.zeros_like(batch.f0)
    batch.theta_min, batch.theta_max = np.array([-50.0]), np.array([50.0])
    theta0 = np.radians(amplitude_deg)
    t = np.linspace(0.0, 1.4, 1401)
    y0 = np.array([[theta0, 0.0, 0.0, 0.0, 1.0, 1.0]])
    u = np.zeros((1, t.size - 1, 3))
    # Without muscles nothing is stiff: one 1 ms step per output.
    y = rk4(batch.rhs, y0, t, inputs=u)[0]

    omega = y[1:, 1]
    tt = t[1:]
    # Velocity crosses zero every half period; interpolate the crossings.
    k = np.nonzero(np.sign(omega[:-1]) != np.sign(omega[1:]))[0]
    crossings = tt[k] - omega[k] * (tt[k + 1] - tt[k]) / (omega[k + 1] - omega[k])
    period = 2.0 * float(np.mean(np.diff(crossings)))
    mgd = params.shank_foot_mass_kg * 9.81 * params.com_distance_m
    exact = 4.0 * np.sqrt(params.inertia_kg_m2 / mgd) * ellipk(np.sin(theta0 / 2) ** 2)
    err = abs(period - exact) / exact
    # Linear interpolation of a zero crossing sampled every 1 ms errs by about
    # (dt / T)^2 ~ 1e-6 of the period.
    return CheckResult(
        "pendulum_period_exact",
        bool(err <= 1e-5),
        float(err),
        1e-5,
        f"period {period:.6f} s against the elliptic-integral {exact:.6f} s",
    )


def verification() -> list[CheckResult]:
    """Run every check (well under a second)."""
    return [
        check_isometric_optimal(),
        check_activation_step(),
        check_fiber_velocity_balance(),
        check_compliant_isometric(),
        check_pendulum_period(),
    ]
