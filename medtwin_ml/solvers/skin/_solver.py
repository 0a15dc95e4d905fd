"""Pennes bioheat in layered skin, 1D (depth) or axisymmetric (depth x radius).

``rho c dT/dt = div(k grad T) + w rho_b c_b (T_a - T) + q_m + Q``

Finite volumes on cell centres: harmonic-mean conductances between cells, so a
layer interface inside the grid keeps the heat flux continuous. The surface is
either held at the applicator's temperature (contact) or loses heat to the air
(Robin), with an applied flux where the device gives one; the bottom of the domain
is held at the core temperature; no heat crosses the outer radius. In time, BDF2
(second order, A-stable, free of the oscillations Crank-Nicolson shows after a
temperature step), started, and restarted when the surface condition switches, by
one backward-Euler step. The initial state is the steady state without the device.

Damage is the Arrhenius integral ``Omega = int A exp(-Ea / (R T)) dt`` per cell,
integrated with the trapezoidal rule over the solver's steps.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import splu, spsolve

from medtwin_ml.devices.heating import light_source_w_m3, rf_source_w_m3
from medtwin_ml.solvers.skin._models import (
    LAYERS,
    SkinDevice,
    SkinParameters,
    SkinScenario,
)
from medtwin_ml.twin import BatchResult, Case, FieldResult

__all__ = [
    "IEC_LIMITS_C",
    "Grid",
    "make_grid",
    "simulate",
    "simulate_batch",
]

logger = logging.getLogger(__name__)

GAS_CONSTANT = 8.314462618
KELVIN = 273.15
# IEC 60601-1 applied-part surface limits: 41 C in general, 43 C for contact of 10
# minutes or more (3rd edition table; check against the edition in force).
IEC_LIMITS_C = (41.0, 43.0)
GROWTH = 1.1


@dataclass(frozen=True)
class Grid:
    """Cell faces in depth (m, ``(nz + 1,)``) and radius (m, ``(nr + 1,)``).

    ``radial`` is False in 1D, where the single column has unit area.
    """

    z_faces: np.ndarray
    r_faces: np.ndarray
    radial: bool

    @property
    def nz(self) -> int:
        return self.z_faces.size - 1

    @property
    def nr(self) -> int:
        return self.r_faces.size - 1

    @property
    def z(self) -> np.ndarray:
        return 0.5 * (self.z_faces[1:] + self.z_faces[:-1])

    @property
    def r(self) -> np.ndarray:
        return 0.5 * (self.r_faces[1:] + self.r_faces[:-1])

    @property
    def area(self) -> np.ndarray:
        """Top face area per column (m2 per radian in 2D, 1 in 1D), ``(nr,)``."""
        if not self.radial:
            return np.ones(1)
        return 0.5 * (self.r_faces[1:] ** 2 - self.r_faces[:-1] ** 2)


def make_grid(s: SkinScenario) -> Grid:
    """The grid a scenario asks for."""
    depth = s.domain_depth_mm * 1e-3
    sizes, total, dz = [], 0.0, s.min_cell_um * 1e-6
    while total < depth:
        sizes.append(dz)
        total += dz
        dz = min(dz * GROWTH, s.max_cell_um * 1e-6)
    # Stretch the cells to end exactly at the domain depth.
    z_faces = np.concatenate([[0.0], np.cumsum(sizes)]) * depth / total
    if s.geometry == "1d":
        return Grid(z_faces, np.array([0.0, 1.0]), radial=False)
    r_faces = np.linspace(0.0, s.domain_radius_mm * 1e-3, s.n_radial + 1)
    return Grid(z_faces, r_faces, radial=True)


def _layer_of_cells(p: SkinParameters, z: np.ndarray) -> np.ndarray:
    bounds = np.cumsum(
        [p.epidermis_thickness_mm, p.dermis_thickness_mm, p.subcutis_thickness_mm]
    )
    return np.searchsorted(bounds * 1e-3, z, side="right")


class _CaseSystem:
    """``C dT/dt = -K T + b`` for one case on a grid, with its two surface states."""

    def __init__(self, case: Case, grid: Grid):
        p: SkinParameters = case.params
        d: SkinDevice = case.device
        s: SkinScenario = case.scenario
        self.device = d
        nz, nr = grid.nz, grid.nr
        dz = np.diff(grid.z_faces)
        self.layer = _layer_of_cells(p, grid.z)

        def prop(name: str) -> np.ndarray:
            values = np.array([getattr(p, f"{lay}_{name}") for lay in LAYERS])
            return values[self.layer]

        k = prop("conductivity_w_per_m_k")
        rho = prop("density_kg_m3")
        rho_c = rho * prop("specific_heat_j_per_kg_k")
        perf = (
            prop("perfusion_per_s")
            * p.blood_density_kg_m3
            * p.blood_specific_heat_j_per_kg_k
        )
        area = grid.area
        vol = dz[:, None] * area[None, :]  # (nz, nr)
        self.capacity = (rho_c[:, None] * vol).ravel()
        idx = np.arange(nz * nr).reshape(nz, nr)

        rows, cols, vals = [], [], []

        def couple(a: np.ndarray, b: np.ndarray, g: np.ndarray) -> None:
            rows.extend([a.ravel(), b.ravel(), a.ravel(), b.ravel()])
            cols.extend([a.ravel(), b.ravel(), b.ravel(), a.ravel()])
            vals.extend([g.ravel(), g.ravel(), -g.ravel(), -g.ravel()])

        g_z = 1.0 / (0.5 * dz[:-1] / k[:-1] + 0.5 * dz[1:] / k[1:])
        couple(idx[:-1], idx[1:], g_z[:, None] * area[None, :])
        if grid.radial and nr > 1:
            dr = np.diff(grid.r_faces)
            r_in = grid.r_faces[1:-1]
            g_r = (
                k[:, None]
                * dz[:, None]
                * r_in[None, :]
                / (0.5 * (dr[:-1] + dr[1:]))[None, :]
            )
            couple(idx[:, :-1], idx[:, 1:], g_r)
        n = nz * nr
        diag = (perf[:, None] * vol).ravel()
        g_bottom = 2.0 * k[-1] / dz[-1] * area
        diag[idx[-1]] += g_bottom
        self.base = sp.coo_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n, n),
        ).tocsc() + sp.diags(diag)
        b = (perf * p.arterial_temperature_c + prop("metabolic_w_per_m3"))[
            :, None
        ] * vol
        b = b.ravel()
        b[idx[-1]] += g_bottom * p.core_temperature_c
        self.top = idx[0]

        # Surface: conductance to the surroundings per area and the series factor.
        h = s.air_heat_transfer_w_per_m2_k
        g1 = 2.0 * k[0] / dz[0]
        t_air = s.ambient_temperature_c
        cover = _coverage(grid, d.applicator_radius_mm * 1e-3)
        g_air = h * g1 / (h + g1)
        self.g1, self.h, self.t_air, self.cover = g1, h, t_air, cover
        b_off = b.copy()
        b_off[self.top] += area * g_air * t_air
        g_top_off = area * g_air
        g_top_on, b_on = g_top_off.copy(), b_off.copy()
        if d.mode == "contact":
            g_top_on = area * (cover * g1 + (1 - cover) * g_air)
            b_on = b.copy()
            b_on[self.top] += area * (
                cover * g1 * d.contact_temperature_c + (1 - cover) * g_air * t_air
            )
        elif d.mode == "flux":
            b_on[self.top] += area * cover * d.surface_flux_w_per_m2 * g1 / (h + g1)
        else:
            z_top, z_bot = grid.z_faces[:-1], grid.z_faces[1:]
            if d.mode == "rf":
                q = rf_source_w_m3(
                    z_top, z_bot, rho, d.sar_w_per_kg, d.penetration_depth_mm * 1e-3
                )
            else:
                q = light_source_w_m3(
                    z_top,
                    z_bot,
                    d.irradiance_w_per_m2,
                    d.attenuation_per_mm * 1e3,
                    d.reflectance,
                )
            b_on += (q[:, None] * vol * cover[None, :]).ravel()
        self.b = {False: b_off, True: b_on}
        self.k = {
            False: self.base + sp.diags(_on_top(n, self.top, g_top_off)),
            True: self.base + sp.diags(_on_top(n, self.top, g_top_on)),
        }
        self.switches = d.mode == "contact"
        self._lu: dict[tuple[bool, float], object] = {}

    def solve(self, on: bool, weight: float, dt: float, rhs: np.ndarray) -> np.ndarray:
        """Solve ``(weight C / dt + K_on) x = rhs`` with a cached factorisation."""
        key = (on and self.switches, weight)
        if key not in self._lu:
            m = sp.diags(weight * self.capacity / dt) + self.k[key[0]]
            self._lu[key] = splu(m.tocsc())
        return self._lu[key].solve(rhs)

    def steady(self) -> np.ndarray:
        return spsolve(self.k[False].tocsc(), self.b[False])

    def surface_temperature(self, t_top: np.ndarray, on: bool) -> np.ndarray:
        """Skin surface temperature per column from the top cells, ``(..., nr)``."""
        d = self.device
        air = (self.h * self.t_air + self.g1 * t_top) / (self.h + self.g1)
        if not on:
            return air
        if d.mode == "contact":
            heated = np.full_like(t_top, d.contact_temperature_c)
        elif d.mode == "flux":
            heated = air + d.surface_flux_w_per_m2 / (self.h + self.g1)
        else:
            heated = air
        return self.cover * heated + (1 - self.cover) * air


def _on_top(n: int, top: np.ndarray, g: np.ndarray) -> np.ndarray:
    out = np.zeros(n)
    out[top] = g
    return out


def _coverage(grid: Grid, radius_m: float) -> np.ndarray:
    """Fraction of each column's top face under the applicator, ``(nr,)``."""
    if not grid.radial:
        return np.ones(1)
    lo, hi = grid.r_faces[:-1] ** 2, grid.r_faces[1:] ** 2
    return np.clip((radius_m**2 - lo) / (hi - lo), 0.0, 1.0)


_SHARED = (
    "duration_s",
    "time_step_s",
    "output_interval_s",
    "geometry",
    "domain_depth_mm",
    "domain_radius_mm",
    "n_radial",
    "min_cell_um",
    "max_cell_um",
)


def _check_cases(cases: Sequence[Case]) -> SkinScenario:
    if len(cases) == 0:
        raise ValueError("no cases given; expected at least one")
    first = cases[0].scenario
    for i, c in enumerate(cases):
        for part, model in (
            ("params", SkinParameters),
            ("device", SkinDevice),
            ("scenario", SkinScenario),
        ):
            if not isinstance(getattr(c, part), model):
                raise TypeError(
                    f"case {i}: {part} is {type(getattr(c, part)).__name__}; "
                    f"expected {model.__name__}"
                )
        differ = [f for f in _SHARED if getattr(c.scenario, f) != getattr(first, f)]
        if differ:
            raise ValueError(
                f"case {i} differs from case 0 in {differ}; every case in a batch "
                f"must share the grid and time fields {list(_SHARED)}"
            )
        p = c.params
        layers_mm = (
            p.epidermis_thickness_mm + p.dermis_thickness_mm + p.subcutis_thickness_mm
        )
        if layers_mm >= first.domain_depth_mm - 1.0:
            raise ValueError(
                f"case {i}: epidermis + dermis + subcutis = {layers_mm:g} mm; expected "
                f"at least 1 mm less than domain_depth_mm {first.domain_depth_mm:g}"
            )
    return first


def _crossing_times(t: np.ndarray, y: np.ndarray, level: float) -> np.ndarray:
    """First time each row of ``y`` ``(batch, time)`` reaches ``level``, else NaN."""
    above = y >= level
    out = np.full(y.shape[0], np.nan)
    for i in np.nonzero(above.any(axis=1))[0]:
        k = int(np.argmax(above[i]))
        if k == 0:
            out[i] = t[0]
        else:
            y0, y1 = y[i, k - 1], y[i, k]
            out[i] = t[k - 1] + (level - y0) / (y1 - y0) * (t[k] - t[k - 1])
    return out


def _solve(cases: Sequence[Case]) -> tuple[Grid, np.ndarray, dict, pd.DataFrame]:
    s = _check_cases(cases)
    grid = make_grid(s)
    systems = [_CaseSystem(c, grid) for c in cases]
    n_cases, nz, nr = len(cases), grid.nz, grid.nr
    dt = s.time_step_s
    n_steps = round(s.duration_s / dt)
    every = round(s.output_interval_s / dt)
    n_on = np.array([round(c.device.heating_duration_s / dt) for c in cases])
    a_damage = np.array([c.params.damage_frequency_factor_per_s for c in cases])
    ea_r = np.array([c.params.damage_activation_energy_j_per_mol for c in cases])
    ea_r = (ea_r / GAS_CONSTANT)[:, None]

    temp = np.stack([sys_.steady() for sys_ in systems])  # (batch, N)
    prev = temp.copy()
    capacity = np.stack([sys_.capacity for sys_ in systems]) / dt
    top = systems[0].top

    def rate(x: np.ndarray) -> np.ndarray:
        return a_damage[:, None] * np.exp(-ea_r / (x + KELVIN))

    damage = np.zeros_like(temp)
    t_max = temp.copy()
    surf = np.stack(
        [
            sys_.surface_temperature(temp[i, top], n_on[i] > 0)
            for i, sys_ in enumerate(systems)
        ]
    )
    surf_steps = [surf.max(axis=1)]
    n_out = n_steps // every + 1
    field = np.empty((n_cases, n_out, nz * nr))
    surface = np.empty((n_cases, n_out, nr))
    field[:, 0], surface[:, 0] = temp, surf
    fresh = np.ones(n_cases, dtype=bool)
    logger.debug(
        "skin: %s cases, %s unknowns each, %s steps", n_cases, nz * nr, n_steps
    )
    for step in range(n_steps):
        on = step < n_on
        switch = (step == n_on) & np.array([sys_.switches for sys_ in systems])
        restart = fresh | switch
        rhs = np.where(
            restart[:, None], capacity * temp, capacity * (2.0 * temp - 0.5 * prev)
        )
        new = np.empty_like(temp)
        for i, sys_ in enumerate(systems):
            weight = 1.0 if restart[i] else 1.5
            new[i] = sys_.solve(bool(on[i]), weight, dt, rhs[i] + sys_.b[bool(on[i])])
        damage += 0.5 * dt * (rate(temp) + rate(new))
        prev, temp = temp, new
        fresh[:] = False
        np.maximum(t_max, temp, out=t_max)
        surf = np.stack(
            [
                sys_.surface_temperature(temp[i, top], bool(on[i]))
                for i, sys_ in enumerate(systems)
            ]
        )
        surf_steps.append(surf.max(axis=1))
        if (step + 1) % every == 0:
            k = (step + 1) // every
            field[:, k], surface[:, k] = temp, surf

    t_out = np.arange(n_out) * s.output_interval_s
    t_steps = np.arange(n_steps + 1) * dt
    surf_steps = np.stack(surf_steps, axis=1)
    shape = (n_cases, nz, nr)
    outputs = {
        "temperature_c": field.reshape(n_cases, n_out, nz, nr),
        "surface_temperature_c": surface,
        "max_temperature_c": t_max.reshape(shape),
        "damage": damage.reshape(shape),
    }
    if not grid.radial:
        outputs = {k: v[..., 0] for k, v in outputs.items()}
    summary = _summary(systems, t_max.reshape(shape), damage.reshape(shape))
    summary["peak_surface_temperature_c"] = surf_steps.max(axis=1)
    for level in IEC_LIMITS_C:
        summary[f"time_to_{level:g}c_s"] = _crossing_times(t_steps, surf_steps, level)
    return grid, t_out, outputs, summary


def _summary(systems, t_max: np.ndarray, damage: np.ndarray) -> pd.DataFrame:
    rows = []
    for i, sys_ in enumerate(systems):
        row = {}
        for j, lay in enumerate(LAYERS):
            mask = sys_.layer == j
            if mask.any():
                row[f"max_temperature_{lay}_c"] = float(t_max[i, mask].max())
                row[f"max_damage_{lay}"] = float(damage[i, mask].max())
            else:
                row[f"max_temperature_{lay}_c"] = np.nan
                row[f"max_damage_{lay}"] = np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _coords(grid: Grid, t_out: np.ndarray) -> dict[str, np.ndarray]:
    coords = {"time_s": t_out, "depth_m": grid.z}
    if grid.radial:
        coords["radius_m"] = grid.r
    return coords


def simulate_batch(cases: Sequence[Case]) -> BatchResult:
    """Solve many cases on one grid.

    Cases may differ in tissue, device and surroundings (ambient temperature, air
    heat transfer) but must share the scenario's grid and time fields.

    Returns:
        coords ``time_s (T,)``, ``depth_m (nz,)`` and, axisymmetric, ``radius_m
        (nr,)``; outputs ``temperature_c (n, T, nz[, nr])``,
        ``surface_temperature_c (n, T[, nr])``, ``max_temperature_c`` and ``damage``
        ``(n, nz[, nr])`` (maximum over time, and the Arrhenius integral at the
        end); the per-case summary.
    """
    grid, t_out, outputs, summary = _solve(cases)
    return BatchResult(coords=_coords(grid, t_out), outputs=outputs, summary=summary)


def simulate(case: Case) -> FieldResult:
    """Solve one case: the fields of :func:`simulate_batch` for it, and the coords."""
    grid, t_out, outputs, summary = _solve([case])
    arrays = _coords(grid, t_out) | {k: v[0] for k, v in outputs.items()}
    arrays["layer_index"] = _layer_of_cells(case.params, grid.z)
    return FieldResult(
        arrays=arrays,
        summary={k: float(v) for k, v in summary.iloc[0].items()},
    )
