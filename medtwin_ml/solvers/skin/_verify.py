"""Checks of the skin solver against exact solutions."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import erfc

from medtwin_ml.solvers.skin._models import (
    LAYERS,
    SkinDevice,
    SkinParameters,
    SkinScenario,
)
from medtwin_ml.solvers.skin._solver import (
    GAS_CONSTANT,
    KELVIN,
    _CaseSystem,
    make_grid,
    simulate_batch,
)
from medtwin_ml.twin import Case, CheckResult

__all__ = ["verification"]

K, RHO, C = 0.45, 1200.0, 3300.0


def uniform_tissue(perfusion_per_s: float = 0.0, **extra: Any) -> SkinParameters:
    """Every layer with the dermis's properties: a homogeneous body."""
    values: dict[str, Any] = {}
    for lay in LAYERS:
        values[f"{lay}_conductivity_w_per_m_k"] = K
        values[f"{lay}_density_kg_m3"] = RHO
        values[f"{lay}_specific_heat_j_per_kg_k"] = C
        values[f"{lay}_perfusion_per_s"] = perfusion_per_s
    # model_copy skips the patient bounds: a check may hold a body at 60 C throughout.
    return SkinParameters(**values).model_copy(update=extra)


def _step_error(cell_um: float, dt_s: float) -> float:
    """Max error of a contact step on a semi-infinite body at t = 10 s."""
    t_i, t_s, t_end = 37.0, 45.0, 10.0
    case = Case(
        uniform_tissue(),
        SkinDevice(mode="contact", contact_temperature_c=t_s, heating_duration_s=t_end),
        SkinScenario(
            duration_s=t_end,
            time_step_s=dt_s,
            output_interval_s=t_end,
            domain_depth_mm=15.0,
            min_cell_um=cell_um,
            max_cell_um=cell_um,
            air_heat_transfer_w_per_m2_k=0.0,
        ),
    )
    res = simulate_batch([case])
    z = res.coords["depth_m"]
    exact = t_i + (t_s - t_i) * erfc(z / (2.0 * np.sqrt(K / (RHO * C) * t_end)))
    return float(np.max(np.abs(res.outputs["temperature_c"][0, -1] - exact)))


def check_step_erfc() -> list[CheckResult]:
    """Contact step: the erfc solution, and second-order convergence."""
    coarse = _step_error(40.0, 0.02)
    fine = _step_error(20.0, 0.01)
    order = float(np.log2(coarse / fine))
    return [
        CheckResult(
            "step_temperature_erfc",
            fine <= 5e-4,
            fine,
            5e-4,
            "max |T - erfc solution| (K) at 10 s, 20 um cells, 10 ms steps, 8 K step",
        ),
        CheckResult(
            "step_temperature_convergence_order",
            order >= 1.8,
            order,
            1.8,
            "observed order halving cells and steps together; BDF2 on a second-order "
            "grid gives 2",
        ),
    ]


def check_perfusion_decay() -> CheckResult:
    """Steady state under a held surface decays over ``sqrt(k / (w rho_b c_b))``."""
    w = 0.00125
    params = uniform_tissue(perfusion_per_s=w)
    t_s, t_a, depth = 44.0, 37.0, 0.02
    scen = SkinScenario(
        domain_depth_mm=depth * 1e3,
        min_cell_um=20.0,
        max_cell_um=20.0,
        air_heat_transfer_w_per_m2_k=0.0,
    )
    grid = make_grid(scen)
    sys_ = _CaseSystem(Case(params, SkinDevice(contact_temperature_c=t_s), scen), grid)
    from scipy.sparse.linalg import spsolve

    temp = spsolve(sys_.k[True].tocsc(), sys_.b[True])
    length = np.sqrt(
        K / (w * params.blood_density_kg_m3 * params.blood_specific_heat_j_per_kg_k)
    )
    z = grid.z
    exact = t_a + (t_s - t_a) * np.sinh((depth - z) / length) / np.sinh(depth / length)
    err = float(np.max(np.abs(temp - exact)))
    return CheckResult(
        "perfusion_decay_length",
        err <= 1e-4,
        err,
        1e-4,
        f"max |T - exact| (K), decay length {length * 1e3:.3f} mm, 20 um cells",
    )


def check_arrhenius_constant() -> CheckResult:
    """At a constant 60 C, ``Omega = A exp(-Ea / (R T)) t`` exactly."""
    t_c, duration = 60.0, 20.0
    params = uniform_tissue(arterial_temperature_c=t_c, core_temperature_c=t_c)
    case = Case(
        params,
        SkinDevice(mode="contact", contact_temperature_c=t_c, heating_duration_s=30.0),
        SkinScenario(
            duration_s=duration,
            time_step_s=0.5,
            output_interval_s=duration,
            domain_depth_mm=15.0,
            air_heat_transfer_w_per_m2_k=0.0,
        ),
    )
    damage = simulate_batch([case]).outputs["damage"][0]
    exact = (
        params.damage_frequency_factor_per_s
        * np.exp(
            -params.damage_activation_energy_j_per_mol / (GAS_CONSTANT * (t_c + KELVIN))
        )
        * duration
    )
    err = float(np.max(np.abs(damage / exact - 1.0)))
    return CheckResult(
        "arrhenius_constant_temperature",
        err <= 1e-9,
        err,
        1e-9,
        f"relative error of Omega against the exact {exact:.4g} at 60 C, 20 s",
    )


def check_light_energy() -> CheckResult:
    """Absorbed light power equals ``(1 - R) E (1 - exp(-mu D))`` per area."""
    dev = SkinDevice(mode="light", irradiance_w_per_m2=1500.0, attenuation_per_mm=0.8)
    scen = SkinScenario(domain_depth_mm=15.0)
    sys_ = _CaseSystem(Case(SkinParameters(), dev, scen), make_grid(scen))
    absorbed = float(np.sum(sys_.b[True] - sys_.b[False]))
    exact = (
        (1 - dev.reflectance)
        * dev.irradiance_w_per_m2
        * (1 - np.exp(-dev.attenuation_per_mm * scen.domain_depth_mm))
    )
    err = abs(absorbed / exact - 1.0)
    return CheckResult(
        "light_absorbed_power", err <= 1e-12, err, 1e-12, "relative, per m2 of skin"
    )


def check_axisymmetric_matches_1d() -> CheckResult:
    """A 2D run whose applicator covers every ring reproduces the 1D run."""
    dev = SkinDevice(mode="flux", applicator_radius_mm=50.0, heating_duration_s=5.0)
    common = {"duration_s": 10.0, "time_step_s": 0.1, "domain_depth_mm": 15.0}
    one = simulate_batch([Case(SkinParameters(), dev, SkinScenario(**common))])
    two = simulate_batch(
        [
            Case(
                SkinParameters(),
                dev,
                SkinScenario(
                    **common, geometry="axisymmetric", domain_radius_mm=10.0, n_radial=4
                ),
            )
        ]
    )
    t1 = one.outputs["temperature_c"][0]
    t2 = two.outputs["temperature_c"][0]
    err = float(np.max(np.abs(t2 - t1[..., None])))
    return CheckResult(
        "axisymmetric_uniform_equals_1d", err <= 1e-8, err, 1e-8, "max |T2d - T1d| (K)"
    )


def verification() -> list[CheckResult]:
    """Run every check (a few seconds)."""
    return [
        *check_step_erfc(),
        check_perfusion_decay(),
        check_arrhenius_constant(),
        check_light_energy(),
        check_axisymmetric_matches_1d(),
    ]
