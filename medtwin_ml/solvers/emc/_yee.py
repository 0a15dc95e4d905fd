"""The Yee lattice: field components, their staggering and the discrete curl.

Arrays are indexed ``(x, y)`` in 2D (``(x, y, z)`` would add one axis). Cell ``i``
spans ``[i, i + 1]`` in cell units along each axis. A component has an offset of 0
(at the cell centre, ``i + 1/2``) or 1/2 (on the upper face, ``i + 1``) along each
axis. Each component is updated from the derivatives of the others listed in its
``terms``; Maxwell's curl equations read

    eps dE/dt + sigma E = sum(sign * d(G)/d(axis)),   mu0 dH/dt = sum(sign * dG/d(axis))

so that 3D needs only the six-component table and nothing else.

A component with offset 0 along an axis is updated on indices ``1 .. N-2`` (its first
and last index form a fixed ring that closes the grid); one with offset 1/2 on indices
``0 .. N-2``. Along a periodic axis index 0 and ``N-1`` are ghost copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["MODES", "Component", "diff", "update_ranges"]


@dataclass(frozen=True)
class Component:
    """One field component.

    Attributes:
        name: ``"ez"``, ``"hx"``...
        kind: ``"E"`` or ``"H"``.
        offset: per axis, 0 (cell centre) or 0.5 (upper face).
        terms: ``(source component, axis, sign)`` of the curl that updates it.
    """

    name: str
    kind: Literal["E", "H"]
    offset: tuple[float, ...]
    terms: tuple[tuple[str, int, int], ...]


MODES: dict[str, tuple[Component, ...]] = {
    "TMz": (
        Component("hx", "H", (0.0, 0.5), (("ez", 1, -1),)),
        Component("hy", "H", (0.5, 0.0), (("ez", 0, +1),)),
        Component("ez", "E", (0.0, 0.0), (("hy", 0, +1), ("hx", 1, -1))),
    ),
    "TEz": (
        Component("hz", "H", (0.0, 0.0), (("ey", 0, -1), ("ex", 1, +1))),
        Component("ex", "E", (0.0, 0.5), (("hz", 1, +1),)),
        Component("ey", "E", (0.5, 0.0), (("hz", 0, -1),)),
    ),
}


def update_ranges(comp: Component, shape: tuple[int, ...]) -> list[tuple[int, int]]:
    """Index range ``[start, stop)`` per axis on which ``comp`` is updated."""
    return [
        (1 if o == 0 else 0, n - 1) for o, n in zip(comp.offset, shape, strict=True)
    ]


def diff(g: Any, axis: int, f_offset: float, ranges: list[tuple[int, int]]) -> Any:
    """Difference of ``g`` along ``axis`` at the positions of a component.

    ``ranges`` are the target's index ranges per axis. A target at offset 0 takes the
    backward difference ``g[i] - g[i-1]`` (``g`` lies at offset 1/2), a target at
    offset 1/2 the forward difference ``g[i+1] - g[i]``. Works on numpy arrays and
    torch tensors alike; the result has the shape of the ranges.
    """
    hi = [slice(a, b) for a, b in ranges]
    lo = list(hi)
    a, b = ranges[axis]
    if f_offset == 0:
        lo[axis] = slice(a - 1, b - 1)
    else:
        hi[axis] = slice(a + 1, b + 1)
    return g[tuple(hi)] - g[tuple(lo)]
