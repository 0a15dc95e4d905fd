"""The FDTD time stepper: Yee updates, CPML, TF/SF plane waves, currents, DFTs.

One :class:`Fdtd` holds the fields of one run on one backend. The grid has ``shape``
cells including a closing ring (index 0 and ``N-1``) and the CPML layers; all
positions below are in cell units, cell ``i`` spanning ``[i, i + 1]``.

Time stepping, per step ``n``: H from ``t_{n-1/2}`` to ``t_{n+1/2}`` using E at
``t_n``; then E from ``t_n`` to ``t_{n+1}`` using H at ``t_{n+1/2}``. Running DFTs
stamp each sample with its own time, so E and H phasors share one time origin.
Phasors follow ``field(t) = Re(F exp(j w t))``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medtwin_ml.solvers.emc._backends import Backend, make_backend
from medtwin_ml.solvers.emc._cpml import CpmlProfile, cpml_coefficients
from medtwin_ml.solvers.emc._materials import EPS0_F_PER_M, MU0_H_PER_M
from medtwin_ml.solvers.emc._tfsf import (
    difference_factor,
    discrete_eps,
    numerical_wavenumber,
)
from medtwin_ml.solvers.emc._yee import MODES, Component, diff, update_ranges

__all__ = ["Fdtd", "Waveform"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Waveform:
    """Time signature of a source, ``s(t)``.

    ``kind="cw"``: ``cos(w t)`` switched on by a raised-cosine ramp of ``ramp_s``.
    ``kind="gaussian"``: ``exp(-((t - t0) / width)^2) cos(w t)``, ``t0 = 4 width``.
    """

    frequency_hz: float
    kind: str = "cw"
    ramp_s: float = 0.0
    width_s: float = 0.0

    @property
    def omega(self) -> float:
        return 2.0 * math.pi * self.frequency_hz

    def envelope(self, t: np.ndarray | float) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        if self.kind == "gaussian":
            return np.exp(-(((t - 4.0 * self.width_s) / self.width_s) ** 2))
        if self.ramp_s <= 0:
            return np.where(t >= 0, 1.0, 0.0)
        x = np.clip(t / self.ramp_s, 0.0, 1.0)
        return 0.5 - 0.5 * np.cos(math.pi * x)

    def value(self, t: float) -> float:
        return float(self.envelope(t)) * math.cos(self.omega * t)

    def settled_after_s(self) -> float:
        """Time after which the envelope is constant (1 for cw, 0 for gaussian)."""
        return self.ramp_s if self.kind == "cw" else 8.0 * self.width_s


@dataclass
class _Sparse:
    """Values added at flat indices of one component each step (sources)."""

    comp: str
    idx: Any
    c_re: Any
    c_im: Any
    c_np: np.ndarray
    delay_s: np.ndarray
    waveform: Waveform
    half_step: bool


@dataclass
class _CpmlTerm:
    comp: str
    source: str
    axis: int
    sign: int
    ranges: list[tuple[int, int]]
    local: tuple[slice, ...]
    b: Any
    a: Any
    psi: Any


@dataclass
class _Dft:
    frequencies_hz: np.ndarray
    lo: tuple[int, ...]
    hi: tuple[int, ...]
    acc: dict[str, list[tuple[Any, Any]]] = field(default_factory=dict)
    src: np.ndarray | None = None
    n_samples: int = 0


class Fdtd:
    """A 2D (TMz or TEz) FDTD run on a uniform square grid.

    Args:
        mode: ``"TMz"`` (ez, hx, hy) or ``"TEz"`` (hz, ex, ey).
        eps_r, sigma_s_per_m, pec: per-cell material maps of the whole grid, shape
            ``(nx, ny)``, ring and CPML cells included.
        cell_m: cell size in m (square cells).
        dt_s: time step in s (at most the Courant limit).
        cpml: layer grading, or ``None`` for a closed (PEC ring) grid.
        omega_ref: angular frequency for the CPML frequency shift, rad/s.
        periodic: per axis, whether it is periodic (no CPML, ghost ring).
        backend: ``"numpy"``, ``"torch"`` or ``"numba"``; ``device`` for torch,
            ``precision`` (``"auto"``, ``"float32"``, ``"float64"``), ``threads`` for
            numba.
    """

    def __init__(
        self,
        mode: str,
        eps_r: np.ndarray,
        sigma_s_per_m: np.ndarray,
        pec: np.ndarray,
        *,
        cell_m: float,
        dt_s: float,
        cpml: CpmlProfile | None = None,
        omega_ref: float = 0.0,
        periodic: tuple[bool, ...] = (False, False),
        backend: str | Backend = "numpy",
        device: str = "cpu",
        precision: str = "auto",
        threads: int = 1,
    ):
        limit = cell_m / (299_792_458.0 * math.sqrt(eps_r.ndim))
        if dt_s > limit * (1 + 1e-12):
            raise ValueError(f"dt_s = {dt_s:g} exceeds the Courant limit {limit:g} s")
        self.mode = mode
        self.components = {c.name: c for c in MODES[mode]}
        self.shape = tuple(eps_r.shape)
        self.ndim = len(self.shape)
        self.cell_m = float(cell_m)
        self.dt_s = float(dt_s)
        self.periodic = tuple(periodic)
        self.bk = (
            backend
            if isinstance(backend, Backend)
            else make_backend(backend, precision, device, threads)
        )
        self.n = 0
        self.fields = {name: self.bk.zeros(self.shape) for name in self.components}
        self._ranges = {
            name: update_ranges(c, self.shape) for name, c in self.components.items()
        }
        self._sl = {
            name: tuple(slice(a, b) for a, b in r) for name, r in self._ranges.items()
        }
        self._materials(eps_r, sigma_s_per_m, pec)
        self._cpml: list[_CpmlTerm] = []
        if cpml is not None:
            self._build_cpml(cpml, omega_ref)
        self._sources: list[_Sparse] = []
        self._dft: _Dft | None = None

    # ----------------------------------------------------------------- set-up

    def position(self, comp: str, axis: int) -> np.ndarray:
        """Positions (cell units) of ``comp``'s indices along ``axis``."""
        return np.arange(self.shape[axis]) + 0.5 + self.components[comp].offset[axis]

    def _component_material(self, comp: Component, cell_map: np.ndarray, mode: str):
        out = cell_map.astype(float) if mode == "mean" else cell_map.copy()
        for axis, off in enumerate(comp.offset):
            if off == 0:
                continue
            nxt = np.roll(out, -1, axis=axis)
            idx = [slice(None)] * self.ndim
            idx[axis] = slice(-1, None)
            nxt[tuple(idx)] = np.take(out, [-1], axis=axis)
            out = 0.5 * (out + nxt) if mode == "mean" else (out | nxt)
        return out

    def _materials(self, eps_r, sigma, pec) -> None:
        self.coef: dict[str, tuple[Any, Any]] = {}
        self._cb_np: dict[str, np.ndarray] = {}
        for name, comp in self.components.items():
            sl = self._sl[name]
            if comp.kind == "H":
                ch = self.dt_s / (MU0_H_PER_M * self.cell_m)
                self.coef[name] = (None, ch)
                self._cb_np[name] = np.full(self.shape, ch)[sl]
                continue
            e = self._component_material(comp, eps_r, "mean") * EPS0_F_PER_M
            s = self._component_material(comp, sigma, "mean")
            p = self._component_material(comp, pec.astype(bool), "any")
            loss = s * self.dt_s / (2.0 * e)
            ca = np.where(p, 0.0, (1.0 - loss) / (1.0 + loss))
            cb = np.where(p, 0.0, (self.dt_s / e) / (1.0 + loss)) / self.cell_m
            self._cb_np[name] = cb[sl]
            self.coef[name] = (self.bk.asarray(ca[sl]), self.bk.asarray(cb[sl]))

    def _build_cpml(self, profile: CpmlProfile, omega: float) -> None:
        m = profile.cells
        for name, comp in self.components.items():
            ranges = self._ranges[name]
            for src, axis, sign in comp.terms:
                if self.periodic[axis]:
                    continue
                start, stop = ranges[axis]
                pos = self.position(name, axis)
                n = self.shape[axis]
                hi_start = math.ceil(n - 1 - m - 0.5 - comp.offset[axis])
                for a0, a1 in ((start, m + 1), (max(start, hi_start), stop)):
                    b, a = cpml_coefficients(
                        pos[a0:a1], n, profile, self.cell_m, self.dt_s, omega
                    )
                    shape = [1] * self.ndim
                    shape[axis] = a1 - a0
                    slab = list(ranges)
                    slab[axis] = (a0, a1)
                    local = [slice(None)] * self.ndim
                    local[axis] = slice(a0 - start, a1 - start)
                    psi_shape = tuple(r1 - r0 for r0, r1 in slab)
                    self._cpml.append(
                        _CpmlTerm(
                            name,
                            src,
                            axis,
                            sign,
                            slab,
                            tuple(local),
                            self.bk.asarray(b.reshape(shape)),
                            self.bk.asarray(a.reshape(shape)),
                            self.bk.zeros(psi_shape),
                        )
                    )

    # ---------------------------------------------------------------- sources

    def add_plane_wave(
        self,
        waveform: Waveform,
        amplitude_v_per_m: float,
        direction: tuple[float, ...],
        box: list[tuple[float, float] | None],
        origin: tuple[float, ...],
        eps_r: float = 1.0,
        sigma_s_per_m: float = 0.0,
    ) -> complex:
        """Inject a plane wave on the boundary of a total-field box.

        Args:
            waveform: a ``"cw"`` waveform.
            amplitude_v_per_m: peak E amplitude at ``origin``.
            direction: unit propagation vector.
            box: per axis ``(low, high)`` faces of the total-field region in cell
                units, or ``None`` along a periodic axis (where the wave must not
                travel).
            origin: point (cell units) where the incident E has phase 0.
            eps_r, sigma_s_per_m: the background the wave travels in.

        Returns:
            The numerical wavenumber in 1/m.
        """
        if waveform.kind != "cw":
            raise ValueError("plane waves take a 'cw' waveform")
        for axis, b in enumerate(box):
            if b is None and abs(direction[axis]) > 1e-12:
                raise ValueError(
                    f"a plane wave cannot travel along periodic axis {axis}"
                )
        omega = waveform.omega
        k = numerical_wavenumber(
            omega, self.dt_s, self.cell_m, direction, eps_r, sigma_s_per_m
        )
        inc = self._incident(
            k, direction, origin, amplitude_v_per_m, omega, eps_r, sigma_s_per_m
        )
        masks = {name: self._inside(name, box) for name in self.components}
        # Delay of the ramp at each point: the wave front enters at the box corner
        # that the direction reaches first.
        corner = [
            0.0 if b is None else (b[0] if u >= 0 else b[1])
            for b, u in zip(box, direction, strict=True)
        ]
        v = omega / k.real
        for name, comp in self.components.items():
            total = self._tfsf_correction(name, comp, inc, masks)
            mag = np.abs(total)
            nz = np.nonzero(mag > 1e-9 * max(mag.max(), 1e-300))
            if not len(nz[0]):
                continue
            full_idx = tuple(
                i + r[0] for i, r in zip(nz, self._ranges[name], strict=True)
            )
            flat = np.ravel_multi_index(full_idx, self.shape)
            c = total[nz]
            along = sum(
                (self.position(name, a)[full_idx[a]] - corner[a]) * direction[a]
                for a in range(self.ndim)
            )
            delay = np.maximum(along, 0.0) * self.cell_m / v
            self._add_sparse(name, flat, c, delay, waveform, comp.kind == "E")
        return k

    def _incident(self, k, direction, origin, amp, omega, eps_r, sigma):
        """Complex incident phasors of every component on the whole grid."""
        big_w = 2.0 * math.sin(omega * self.dt_s / 2.0) / self.dt_s
        ks = [k * u for u in direction]
        kd = [difference_factor(kk, self.cell_m) for kk in ks]

        def phase(name: str) -> np.ndarray:
            grids = np.meshgrid(
                *[self.position(name, a) - origin[a] for a in range(self.ndim)],
                indexing="ij",
            )
            arg = sum(kk * g * self.cell_m for kk, g in zip(ks, grids, strict=True))
            return np.exp(-1j * arg)

        inc: dict[str, np.ndarray] = {}
        if self.mode == "TMz":
            inc["ez"] = amp * phase("ez")
            for name in ("hx", "hy"):
                comp = self.components[name]
                value = sum(sign * kd[axis] for _, axis, sign in comp.terms)
                inc[name] = -value * amp * phase(name) / (big_w * MU0_H_PER_M)
        else:
            eps_d = discrete_eps(eps_r, sigma, omega, self.dt_s)
            e_vec = {}
            for name in ("ex", "ey"):
                comp = self.components[name]
                value = sum(sign * kd[axis] for _, axis, sign in comp.terms)
                e_vec[name] = -value / (big_w * eps_d)
            norm = np.sqrt(sum(v**2 for v in e_vec.values()))
            h0 = amp / norm
            inc["hz"] = h0 * phase("hz")
            for name in ("ex", "ey"):
                inc[name] = e_vec[name] * h0 * phase(name)
        return inc

    def _inside(self, name: str, box) -> np.ndarray:
        mask = np.ones(self.shape, dtype=bool)
        for axis, b in enumerate(box):
            if b is None:
                continue
            p = self.position(name, axis)
            inside = (p >= b[0] - 1e-9) & (p <= b[1] + 1e-9)
            shape = [1] * self.ndim
            shape[axis] = -1
            mask = mask & inside.reshape(shape)
        return mask

    def _tfsf_correction(self, name, comp, inc, masks) -> np.ndarray:
        ranges = self._ranges[name]
        sl = self._sl[name]
        t_f = masks[name][sl]
        total = np.zeros(tuple(b - a for a, b in ranges), dtype=complex)
        for src, axis, sign in comp.terms:
            g, t_g = inc[src], masks[src]
            d_out = diff(g * ~t_g, axis, comp.offset[axis], ranges)
            d_in = diff(g * t_g, axis, comp.offset[axis], ranges)
            total += sign * np.where(t_f, d_out, -d_in)
        return total * self._cb_np[name]

    def _add_sparse(self, name, flat, c, delay, waveform, half_step) -> None:
        self._sources.append(
            _Sparse(
                name,
                self.bk.index(flat),
                self.bk.asarray(c.real),
                self.bk.asarray(c.imag),
                c,
                delay,
                waveform,
                half_step,
            )
        )

    def add_current(
        self, cells: np.ndarray, current_density_a_per_m2: float, waveform: Waveform
    ) -> None:
        """A current density ``J(t) = J0 s(t)`` along the E component of a TMz grid.

        ``cells``: integer indices, shape ``(n_cells, ndim)``; the source is
        ``J0 s(t)`` in A/m^2 in each of them (a line current ``I`` in one cell is
        ``J0 = I / cell_m^2``).
        """
        if self.mode != "TMz":
            raise ValueError("current sources are implemented for TMz (along ez)")
        cells = np.asarray(cells, dtype=int).reshape(-1, self.ndim)
        rng = self._ranges["ez"]
        local = tuple(cells[:, a] - rng[a][0] for a in range(self.ndim))
        cb = self._cb_np["ez"][local] * self.cell_m
        c = -cb * current_density_a_per_m2 + 0j
        flat = np.ravel_multi_index(tuple(cells.T), self.shape)
        self._add_sparse("ez", flat, c, np.zeros(len(flat)), waveform, True)

    def set_field(self, name: str, values: np.ndarray) -> None:
        """Overwrite one component (initial conditions)."""
        self.fields[name] = self.bk.asarray(values)

    def get_field(self, name: str) -> np.ndarray:
        return self.bk.to_numpy(self.fields[name])

    # ------------------------------------------------------------------- DFTs

    def start_dft(
        self,
        frequencies_hz: list[float] | np.ndarray,
        lo: tuple[int, ...],
        hi: tuple[int, ...],
        reference: Waveform | None = None,
    ) -> None:
        """Start (or restart) running DFTs on cells ``lo .. hi - 1`` (plus one
        index below, for interpolation to cell centres).

        With ``reference``, phasors are normalised by that waveform's own DFT over
        the same samples (the source spectrum); without it by ``2 / n_samples``.
        """
        f = np.atleast_1d(np.asarray(frequencies_hz, dtype=float))
        dft = _Dft(f, tuple(lo), tuple(hi))
        shape = tuple(h - lo_ + 1 for lo_, h in zip(lo, hi, strict=True))
        for name in self.components:
            dft.acc[name] = [(self.bk.zeros(shape), self.bk.zeros(shape)) for _ in f]
        dft.src = np.zeros(len(f), dtype=complex) if reference is not None else None
        self._dft = dft
        self._dft_ref = reference

    def phasors(self) -> dict[str, np.ndarray]:
        """Complex phasors ``(n_freq, *region)`` per component, at stored positions
        (region = ``hi - lo + 1`` indices starting at ``lo - 1``)."""
        dft = self._dft
        if dft is None or dft.n_samples == 0:
            raise RuntimeError("no DFT samples: call start_dft and step first")
        out = {}
        for name, accs in dft.acc.items():
            vals = []
            for i, (re, im) in enumerate(accs):
                z = self.bk.to_numpy(re) + 1j * self.bk.to_numpy(im)
                if dft.src is not None:
                    z = z / dft.src[i]
                else:
                    z = z * 2.0 / dft.n_samples
                vals.append(z)
            out[name] = np.stack(vals)
        return out

    def _accumulate(self) -> None:
        dft = self._dft
        t_e = (self.n + 1) * self.dt_s
        t_h = (self.n + 0.5) * self.dt_s
        sl = tuple(slice(a - 1, b) for a, b in zip(dft.lo, dft.hi, strict=True))
        for name, comp in self.components.items():
            t = t_e if comp.kind == "E" else t_h
            region = self.fields[name][sl]
            for f, (re, im) in zip(dft.frequencies_hz, dft.acc[name], strict=True):
                w = 2.0 * math.pi * f
                re += region * math.cos(w * t)
                im -= region * math.sin(w * t)
        if dft.src is not None:
            s = self._dft_ref.value(t_e)
            dft.src += s * np.exp(-1j * 2.0 * math.pi * dft.frequencies_hz * t_e)
        dft.n_samples += 1

    # -------------------------------------------------------------- stepping

    def step(self, n_steps: int = 1) -> None:
        """Advance ``n_steps`` leapfrog steps."""
        for _ in range(n_steps):
            for kind in ("H", "E"):
                t_src = (self.n + (0.5 if kind == "E" else 0.0)) * self.dt_s
                for name, comp in self.components.items():
                    if comp.kind == kind:
                        self._update(name, comp)
                        self._apply_cpml(name)
                        self._apply_sources(name, t_src)
                        self._wrap(name)
            if self._dft is not None:
                self._accumulate()
            self.n += 1

    def _update(self, name: str, comp: Component) -> None:
        f = self.fields[name]
        sl = self._sl[name]
        ranges = self._ranges[name]
        if self.bk.fused:
            self.bk.kernels.update(self, name, comp)
            return
        curl = None
        for src, axis, sign in comp.terms:
            d = diff(self.fields[src], axis, comp.offset[axis], ranges)
            if curl is None:
                curl = d if sign > 0 else -d
            elif sign > 0:
                curl += d
            else:
                curl -= d
        ca, cb = self.coef[name]
        if ca is None:
            curl *= cb
            f[sl] += curl
        else:
            curl *= cb
            region = f[sl]
            region *= ca
            region += curl

    def _apply_cpml(self, name: str) -> None:
        f = self.fields[name]
        ca, cb = self.coef[name]
        for term in self._cpml:
            if term.comp != name:
                continue
            d = diff(
                self.fields[term.source],
                term.axis,
                self.components[name].offset[term.axis],
                term.ranges,
            )
            term.psi *= term.b
            term.psi += term.a * d
            coef = cb if ca is None else cb[term.local]
            region = f[tuple(slice(a, b) for a, b in term.ranges)]
            if term.sign > 0:
                region += coef * term.psi
            else:
                region -= coef * term.psi

    def _apply_sources(self, name: str, t: float) -> None:
        for src in self._sources:
            if src.comp != name:
                continue
            w = src.waveform
            t_s = t
            if w.kind == "cw" and t_s - src.delay_s.max() >= w.ramp_s:
                c, s = math.cos(w.omega * t_s), math.sin(w.omega * t_s)
                vals = src.c_re * c - src.c_im * s
            else:
                env = w.envelope(t_s - src.delay_s)
                vals = self.bk.asarray(
                    env * (src.c_np * np.exp(1j * w.omega * t_s)).real
                )
            self.bk.add_at(self.fields[name], src.idx, vals)

    def _wrap(self, name: str) -> None:
        f = self.fields[name]
        for axis, per in enumerate(self.periodic):
            if not per:
                continue
            dst0 = [slice(None)] * self.ndim
            src0 = list(dst0)
            dst1 = list(dst0)
            src1 = list(dst0)
            dst0[axis], src0[axis] = slice(0, 1), slice(-2, -1)
            dst1[axis], src1[axis] = slice(-1, None), slice(1, 2)
            f[tuple(dst0)] = f[tuple(src0)]
            f[tuple(dst1)] = f[tuple(src1)]

    @property
    def cells(self) -> int:
        return int(np.prod(self.shape))
