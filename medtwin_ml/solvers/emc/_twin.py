"""The ``emc`` twin: scenes and scenarios in, total-field phasors, probes, SAR out."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from medtwin_ml.config import validate_input
from medtwin_ml.errors import ConfigError
from medtwin_ml.solvers.emc._families import FAMILIES, build_scene, sample_scenes
from medtwin_ml.solvers.emc._sar import local_sar, peak_average_sar
from medtwin_ml.solvers.emc._scenario import EmcScenario, PlaneWave, exposures
from medtwin_ml.solvers.emc._scene import EmcScene
from medtwin_ml.solvers.emc._solve import (
    EmcSolverSettings,
    check_resolution,
    solve_exposure,
)
from medtwin_ml.twin import (
    BatchResult,
    Case,
    DomainVariable,
    FieldResult,
    InputDomain,
    Quantity,
    TwinSpec,
)

__all__ = ["TWIN", "cases_from_design", "simulate", "simulate_batch"]

logger = logging.getLogger(__name__)

SOLVER_VERSION = "1"

INPUT_DOMAIN = InputDomain(
    variables=[
        DomainVariable(name="frequency_hz", unit="Hz", low=4.0e8, high=2.5e9),
        DomainVariable(
            name="direction_deg",
            unit="deg",
            low=-135.0,
            high=-45.0,
            description="Propagation direction from +x (waves from above).",
        ),
    ]
)

OUTPUTS = (
    Quantity("x_m", "m", "cell-centre x coordinates (nx,)"),
    Quantity("y_m", "m", "cell-centre y coordinates (ny,)"),
    Quantity("ez", "V/m", "complex total-field phasor (nx, ny), TMz"),
    Quantity("hx", "A/m", "complex phasor (nx, ny), TMz"),
    Quantity("hy", "A/m", "complex phasor (nx, ny), TMz"),
    Quantity("hz", "A/m", "complex phasor (nx, ny), TEz"),
    Quantity("ex", "V/m", "complex phasor (nx, ny), TEz"),
    Quantity("ey", "V/m", "complex phasor (nx, ny), TEz"),
    Quantity("e_abs_v_per_m", "V/m", "peak |E| (nx, ny)"),
    Quantity("sar_w_per_kg", "W/kg", "local SAR (nx, ny), zero off tissue"),
    Quantity("probe_margin_db", "dB", "20 log10(threshold / |E|) per probe"),
)


def _check(scene: EmcScene, settings: EmcSolverSettings, exps) -> None:
    for exp in exps:
        check_resolution(scene, exp.frequency_hz, settings.min_cells_per_wavelength)


def simulate(case: Case) -> FieldResult:
    """Solve one case; arrays gain a leading frequency axis when the scenario
    expands into several exposures (IEC tests).

    Raises:
        ConfigError: a cell too coarse for a frequency, before any time stepping.
    """
    scene: EmcScene = case.params
    settings: EmcSolverSettings = case.device
    exps = exposures(case.scenario)
    _check(scene, settings, exps)

    x_m, y_m = scene.centres_m()
    names = sorted(scene.probes)
    per_exposure: list[dict[str, np.ndarray]] = []
    summary: dict[str, Any] = {}
    for exp in exps:
        sol = solve_exposure(scene, exp, settings)
        rho = sol.maps["density_kg_per_m3"]
        sar = local_sar(sol.e_abs, sol.maps["sigma_s_per_m"], rho)
        probe_e = np.array([_probe_value(scene, n, sol.e_abs) for n in names])
        thr = np.array([scene.probes[n].threshold_v_per_m for n in names])
        with np.errstate(divide="ignore"):
            margin = 20.0 * np.log10(thr / np.maximum(probe_e, 1e-300))
        arrays = {**sol.fields}
        arrays.update(
            e_abs_v_per_m=sol.e_abs,
            eps_r=sol.maps["eps_r"],
            sigma_s_per_m=sol.maps["sigma_s_per_m"],
            probe_e_v_per_m=probe_e,
            probe_margin_db=margin,
        )
        if (rho > 0).any():
            arrays["sar_w_per_kg"] = sar
            arrays["psar_1g_w_per_kg"] = np.array(
                peak_average_sar(sar, rho, scene.cell_m, 1e-3)
            )
            arrays["psar_10g_w_per_kg"] = np.array(
                peak_average_sar(sar, rho, scene.cell_m, 1e-2)
            )
        per_exposure.append(arrays)
        tag = f"{exp.frequency_hz / 1e6:.6g}MHz"
        summary[f"converged_{tag}"] = bool(sol.converged)
        summary[f"periods_{tag}"] = float(sol.periods)
        summary[f"cell_updates_per_s_{tag}"] = float(sol.cell_updates_per_s)

    single = len(exps) == 1
    out: dict[str, np.ndarray] = {
        "x_m": x_m,
        "y_m": y_m,
        "frequency_hz": np.array([e.frequency_hz for e in exps]),
        "amplitude_v_per_m": np.array([e.amplitude_v_per_m for e in exps]),
        "probe_names": np.array(names, dtype=str),
        "probe_threshold_v_per_m": np.array(
            [scene.probes[n].threshold_v_per_m for n in names]
        ),
    }
    for key in per_exposure[0]:
        stacked = np.stack([a[key] for a in per_exposure])
        out[key] = stacked[0] if single else stacked
    if names:
        worst = float(np.min(out["probe_margin_db"]))
        summary["worst_probe_margin_db"] = worst
        summary["immunity_pass"] = bool(worst >= 0.0)
    if "psar_10g_w_per_kg" in out:
        summary["psar_1g_w_per_kg"] = float(np.max(out["psar_1g_w_per_kg"]))
        summary["psar_10g_w_per_kg"] = float(np.max(out["psar_10g_w_per_kg"]))
    return FieldResult(arrays=out, summary=summary)


def _probe_value(scene: EmcScene, name: str, e_abs: np.ndarray) -> float:
    p = scene.probes[name]
    nx, ny = e_abs.shape
    dx = scene.cell_m

    def idx(v: float, n: int) -> int:
        return int(np.clip(math.floor(v / dx), 0, n - 1))

    if p.point_m is not None:
        return float(e_abs[idx(p.point_m[0], nx), idx(p.point_m[1], ny)])
    i0, i1 = idx(p.min_m[0], nx), idx(p.max_m[0], nx)
    j0, j1 = idx(p.min_m[1], ny), idx(p.max_m[1], ny)
    return float(e_abs[i0 : i1 + 1, j0 : j1 + 1].max())


def simulate_batch(cases: Sequence[Case]) -> BatchResult:
    """Solve cases one after another on one grid (for datasets of field twins).

    Outputs, shape ``(n_cases, nx, ny)``: ``ez_re_v_per_m``, ``ez_im_v_per_m``,
    ``ez_abs_v_per_m`` (``hz_*_a_per_m`` for TEz), ``e_abs_v_per_m``, ``eps_r``,
    ``sigma_s_per_m``, ``sar_w_per_kg``. Every case must be a single exposure of
    one polarisation on the same grid.
    """
    if not cases:
        raise ValueError("simulate_batch needs at least one case")
    grid = None
    outputs: dict[str, list[np.ndarray]] = {}
    rows = []
    for i, case in enumerate(cases):
        exps = exposures(case.scenario)
        if len(exps) != 1:
            raise ValueError(f"case {i}: a batch takes single-frequency scenarios")
        result = simulate(case)
        a = result.arrays
        key = (a["x_m"].tobytes(), a["y_m"].tobytes(), exps[0].polarization)
        if grid is None:
            grid = key
        elif key != grid:
            raise ValueError(f"case {i}: grid or polarisation differs from case 0")
        main, unit = (
            ("ez", "v_per_m") if exps[0].polarization == "TMz" else ("hz", "a_per_m")
        )
        outputs.setdefault(f"{main}_re_{unit}", []).append(a[main].real)
        outputs.setdefault(f"{main}_im_{unit}", []).append(a[main].imag)
        outputs.setdefault(f"{main}_abs_{unit}", []).append(np.abs(a[main]))
        for name in ("e_abs_v_per_m", "eps_r", "sigma_s_per_m"):
            outputs.setdefault(name, []).append(a[name])
        outputs.setdefault("sar_w_per_kg", []).append(
            a.get("sar_w_per_kg", np.zeros_like(a["eps_r"]))
        )
        rows.append(
            {
                "frequency_hz": exps[0].frequency_hz,
                "direction_deg": exps[0].direction_deg,
                **{
                    k: v
                    for k, v in result.summary.items()
                    if not k.startswith(("converged_", "periods_", "cell_"))
                },
                "converged": all(
                    v for k, v in result.summary.items() if k.startswith("converged_")
                ),
            }
        )
    first = cases[0]
    x_m, y_m = first.params.centres_m()
    return BatchResult(
        coords={"x_m": x_m, "y_m": y_m},
        outputs={k: np.stack(v) for k, v in outputs.items()},
        summary=pd.DataFrame(rows),
    )


def sample_cohort(cohort: str, n: int, seed: int) -> list[EmcScene]:
    """``n`` scenes of the family ``cohort`` (``enclosure`` or ``body_worn``)."""
    if n < 1:
        raise ValueError(f"n = {n}; expected at least 1 scene")
    return sample_scenes(cohort, n, seed)


def cases_from_design(
    design: pd.DataFrame,
    scenes: Sequence[EmcScene],
    options: Mapping[str, Any] | None = None,
) -> list[Case]:
    """Case ``i`` = scene ``i`` lit by a plane wave from design row ``i``.

    Design columns: ``frequency_hz`` and ``direction_deg`` (see the input domain).
    ``options`` may hold ``amplitude_v_per_m``, ``polarization`` and solver settings
    under ``solver`` (a mapping validated as :class:`EmcSolverSettings`).
    """
    options = dict(options or {})
    if len(scenes) != len(design):
        raise ValueError(f"{len(scenes)} scenes for {len(design)} design rows")
    known = {"amplitude_v_per_m", "polarization", "solver"}
    unknown = set(options) - known
    if unknown:
        raise ConfigError(
            "options",
            [(k, options[k], f"one of {sorted(known)}") for k in sorted(unknown)],
        )
    settings = validate_input(
        options.get("solver", {}), EmcSolverSettings, "options.solver"
    )
    cases = []
    for scene, row in zip(scenes, design.to_dict("records"), strict=True):
        wave = PlaneWave(
            frequency_hz=float(row["frequency_hz"]),
            direction_deg=float(row.get("direction_deg", -90.0)),
            amplitude_v_per_m=float(options.get("amplitude_v_per_m", 1.0)),
            polarization=options.get("polarization", "TMz"),
        )
        cases.append(Case(params=scene, device=settings, scenario=EmcScenario(wave)))
    return cases


def scene_from_family(family: str, values: Mapping[str, float]) -> EmcScene:
    """A scene of ``family`` (``enclosure``, ``body_worn``) at ``values``."""
    return build_scene(family, dict(values))


def _verification():
    from medtwin_ml.solvers.emc._verify import run_checks

    return run_checks()


TWIN = TwinSpec(
    name="emc",
    title="2D FDTD field solver: immunity, exposure (SAR) and shielding",
    output_kind="field",
    parameters=EmcScene,
    device=EmcSolverSettings,
    scenario=EmcScenario,
    outputs=OUTPUTS,
    input_domain=INPUT_DOMAIN,
    solver_version=SOLVER_VERSION,
    simulate=simulate,
    simulate_batch=simulate_batch,
    verification=_verification,
    cases_from_design=cases_from_design,
    sample_cohort=sample_cohort,
    cohorts=FAMILIES,
)
