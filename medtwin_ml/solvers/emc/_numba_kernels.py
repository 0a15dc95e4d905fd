"""Compiled, threaded Yee updates for the numba backend (2D TMz and TEz).

Each kernel fuses one field's curl update into a single pass over the grid (the
array-expression form makes several), with the outer index split over threads. The
index ranges, signs and coefficient layouts are those of
:mod:`medtwin_ml.solvers.emc._yee`; CPML, sources and DFTs stay on the shared
array path. The H components of a mode are updated together on the first one's
call.
"""

from __future__ import annotations

from typing import Any

import numba as nb

__all__ = ["update"]

_OPTS = {"parallel": True, "fastmath": True, "cache": False, "nogil": True}


@nb.njit(**_OPTS)
def _tmz_h(hx, hy, ez, ch):  # pragma: no cover - compiled
    nx, ny = ez.shape
    for i in nb.prange(nx - 1):
        if i == 0:
            for j in range(1, ny - 1):
                hy[0, j] += ch * (ez[1, j] - ez[0, j])
            continue
        hx[i, 0] -= ch * (ez[i, 1] - ez[i, 0])
        for j in range(1, ny - 1):
            e = ez[i, j]
            hx[i, j] -= ch * (ez[i, j + 1] - e)
            hy[i, j] += ch * (ez[i + 1, j] - e)


@nb.njit(**_OPTS)
def _tmz_e(ez, hx, hy, ca, cb):  # pragma: no cover - compiled
    nx, ny = ez.shape
    for i in nb.prange(1, nx - 1):
        for j in range(1, ny - 1):
            curl = (hy[i, j] - hy[i - 1, j]) - (hx[i, j] - hx[i, j - 1])
            ez[i, j] = ca[i - 1, j - 1] * ez[i, j] + cb[i - 1, j - 1] * curl


@nb.njit(**_OPTS)
def _tez_h(hz, ex, ey, ch):  # pragma: no cover - compiled
    nx, ny = hz.shape
    for i in nb.prange(1, nx - 1):
        for j in range(1, ny - 1):
            hz[i, j] += ch * ((ex[i, j] - ex[i, j - 1]) - (ey[i, j] - ey[i - 1, j]))


@nb.njit(**_OPTS)
def _tez_e(ex, ey, hz, cax, cbx, cay, cby):  # pragma: no cover - compiled
    nx, ny = hz.shape
    for i in nb.prange(nx - 1):
        if i == 0:
            for j in range(1, ny - 1):
                ey[0, j] = cay[0, j - 1] * ey[0, j] - cby[0, j - 1] * (
                    hz[1, j] - hz[0, j]
                )
            continue
        ex[i, 0] = cax[i - 1, 0] * ex[i, 0] + cbx[i - 1, 0] * (hz[i, 1] - hz[i, 0])
        for j in range(1, ny - 1):
            h = hz[i, j]
            ex[i, j] = cax[i - 1, j] * ex[i, j] + cbx[i - 1, j] * (hz[i, j + 1] - h)
            ey[i, j] = cay[i, j - 1] * ey[i, j] - cby[i, j - 1] * (hz[i + 1, j] - h)


def update(sim: Any, name: str, comp: Any) -> None:
    """Update ``name`` (and its sibling of the same kind) of ``sim`` in place."""
    f = sim.fields
    if sim.ndim != 2:
        raise ValueError("the numba kernels are written for 2D grids")
    if sim.mode == "TMz":
        if name == "hx":
            _tmz_h(f["hx"], f["hy"], f["ez"], f["ez"].dtype.type(sim.coef["hx"][1]))
        elif name == "ez":
            ca, cb = sim.coef["ez"]
            _tmz_e(f["ez"], f["hx"], f["hy"], ca, cb)
    else:
        if name == "hz":
            _tez_h(f["hz"], f["ex"], f["ey"], f["hz"].dtype.type(sim.coef["hz"][1]))
        elif name == "ex":
            cax, cbx = sim.coef["ex"]
            cay, cby = sim.coef["ey"]
            _tez_e(f["ex"], f["ey"], f["hz"], cax, cbx, cay, cby)
