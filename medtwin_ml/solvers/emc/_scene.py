"""Scenes (``--params``): the domain, its background, objects and probes.

A scene is a rectangle ``[0, Lx] x [0, Ly]`` of square cells; absorbing layers lie
outside it. Objects are painted on the cells in order (a later object overrides an
earlier one); a cell belongs to an object when its centre does (staircasing).
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator, model_validator

from medtwin_ml.config import BoundaryModel
from medtwin_ml.solvers.emc._materials import MATERIAL_NAMES, material_properties

__all__ = [
    "Background",
    "Circle",
    "EmcScene",
    "Polygon",
    "Probe",
    "Rectangle",
    "rasterize",
]

Point = tuple[float, float]


class _Filled(BoundaryModel):
    """A material by name, or by ``eps_r`` and ``sigma_s_per_m``."""

    name: str = Field("", description="Optional label of the object.")
    material: str | None = Field(
        None, description=f"Material name, one of {', '.join(MATERIAL_NAMES)}."
    )
    eps_r: float | None = Field(None, ge=1.0, description="Relative permittivity.")
    sigma_s_per_m: float | None = Field(None, ge=0.0, description="Conductivity, S/m.")
    density_kg_per_m3: float | None = Field(
        None, gt=0.0, description="Mass density for SAR in kg/m^3 (tissue only)."
    )

    @field_validator("material")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in MATERIAL_NAMES:
            names = ", ".join(MATERIAL_NAMES)
            raise ValueError(f"unknown material {value!r}; expected one of {names}")
        return value

    @model_validator(mode="after")
    def _one_way(self):
        if (self.material is None) == (self.eps_r is None):
            raise ValueError("give either 'material' or 'eps_r' (with sigma_s_per_m)")
        if self.material is not None and self.sigma_s_per_m is not None:
            raise ValueError("'sigma_s_per_m' goes with 'eps_r', not with 'material'")
        return self

    def properties(self, frequency_hz: float):
        if self.material is not None:
            return material_properties(self.material, frequency_hz)
        from medtwin_ml.solvers.emc._materials import MaterialProperties

        return MaterialProperties(
            self.eps_r, self.sigma_s_per_m or 0.0, self.density_kg_per_m3 or 0.0
        )

    def bounds(self) -> tuple[Point, Point]:
        raise NotImplementedError

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Circle(_Filled):
    """A disc: ``center_m`` and ``radius_m`` in m."""

    shape: Literal["circle"] = "circle"
    center_m: Point
    radius_m: float = Field(gt=0.0)

    def bounds(self):
        (cx, cy), r = self.center_m, self.radius_m
        return (cx - r, cy - r), (cx + r, cy + r)

    def contains(self, x, y):
        cx, cy = self.center_m
        return (x - cx) ** 2 + (y - cy) ** 2 <= self.radius_m**2


class Rectangle(_Filled):
    """An axis-aligned rectangle from ``min_m`` to ``max_m`` (corners in m)."""

    shape: Literal["rectangle"] = "rectangle"
    min_m: Point
    max_m: Point

    @model_validator(mode="after")
    def _ordered(self):
        if not (self.min_m[0] < self.max_m[0] and self.min_m[1] < self.max_m[1]):
            raise ValueError(f"min_m {self.min_m} must lie below and left of max_m")
        return self

    def bounds(self):
        return self.min_m, self.max_m

    def contains(self, x, y):
        (x0, y0), (x1, y1) = self.min_m, self.max_m
        return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)


class Polygon(_Filled):
    """A simple polygon through ``vertices_m`` (m), closed automatically."""

    shape: Literal["polygon"] = "polygon"
    vertices_m: list[Point] = Field(min_length=3)

    def bounds(self):
        v = np.asarray(self.vertices_m)
        return tuple(v.min(axis=0)), tuple(v.max(axis=0))

    def contains(self, x, y):
        v = np.asarray(self.vertices_m, dtype=float)
        inside = np.zeros(np.broadcast(x, y).shape, dtype=bool)
        for (xa, ya), (xb, yb) in zip(v, np.roll(v, -1, axis=0), strict=True):
            crosses = (ya > y) != (yb > y)
            with np.errstate(divide="ignore", invalid="ignore"):
                x_cross = xa + (y - ya) * (xb - xa) / (yb - ya)
            inside ^= crosses & (x < x_cross)
        return inside


SceneObject = Annotated[Circle | Rectangle | Polygon, Field(discriminator="shape")]


class Background(BoundaryModel):
    """The medium that fills the domain and the absorbing layers."""

    eps_r: float = Field(1.0, ge=1.0, description="Relative permittivity.")
    sigma_s_per_m: float = Field(0.0, ge=0.0, description="Conductivity, S/m.")


class Probe(BoundaryModel):
    """A named point (``point_m``) or region (``min_m``, ``max_m``) with an
    immunity threshold in V/m; the probe value is the peak |E| there."""

    point_m: Point | None = None
    min_m: Point | None = None
    max_m: Point | None = None
    threshold_v_per_m: float = Field(gt=0.0, description="Susceptibility, V/m.")

    @model_validator(mode="after")
    def _point_or_region(self):
        region = self.min_m is not None and self.max_m is not None
        if (self.point_m is None) == (not region) or (
            (self.min_m is None) != (self.max_m is None)
        ):
            raise ValueError("give either 'point_m' or both 'min_m' and 'max_m'")
        return self


class EmcScene(BoundaryModel):
    """A 2D scene: domain, cell size, background, objects and probes (SI units)."""

    domain_m: tuple[float, float] = Field(description="Domain size (Lx, Ly) in m.")
    cell_m: float = Field(gt=0.0, description="Square cell size in m.")
    background: Background = Field(default_factory=Background)
    objects: list[SceneObject] = Field(default_factory=list)
    probes: dict[str, Probe] = Field(default_factory=dict)

    @field_validator("domain_m")
    @classmethod
    def _positive(cls, value):
        if min(value) <= 0:
            raise ValueError(f"domain sides must be positive, got {value}")
        return value

    @field_validator("cell_m")
    @classmethod
    def _cells(cls, value: float, info: ValidationInfo) -> float:
        domain = info.data.get("domain_m")
        if domain is not None:
            n = [round(side / value) for side in domain]
            if min(n) < 4:
                raise ValueError(f"cell {value} m leaves fewer than 4 cells on a side")
            if n[0] * n[1] > 16_000_000:
                raise ValueError(f"{n[0]} x {n[1]} cells exceed the 16 million limit")
        return value

    @field_validator("objects")
    @classmethod
    def _inside(cls, objects, info: ValidationInfo):
        domain = info.data.get("domain_m")
        if domain is None:
            return objects
        for i, obj in enumerate(objects):
            (x0, y0), (x1, y1) = obj.bounds()
            if x0 < 0 or y0 < 0 or x1 > domain[0] or y1 > domain[1]:
                raise ValueError(
                    f"objects[{i}] ({obj.shape}{' ' + obj.name if obj.name else ''}) "
                    f"spans x [{x0:g}, {x1:g}] m, y [{y0:g}, {y1:g}] m: outside the "
                    f"domain [0, {domain[0]:g}] x [0, {domain[1]:g}] m"
                )
        return objects

    @field_validator("probes")
    @classmethod
    def _probes_inside(cls, probes, info: ValidationInfo):
        domain = info.data.get("domain_m")
        if domain is None:
            return probes
        for name, p in probes.items():
            pts = [p.point_m] if p.point_m is not None else [p.min_m, p.max_m]
            for x, y in pts:
                if not (0 <= x <= domain[0] and 0 <= y <= domain[1]):
                    raise ValueError(
                        f"probe {name!r} at ({x:g}, {y:g}) m lies outside the domain"
                    )
        return probes

    @property
    def n_cells(self) -> tuple[int, int]:
        return tuple(max(1, round(side / self.cell_m)) for side in self.domain_m)

    def centres_m(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell-centre coordinates ``x_m`` (nx,) and ``y_m`` (ny,)."""
        nx, ny = self.n_cells
        return (np.arange(nx) + 0.5) * self.cell_m, (np.arange(ny) + 0.5) * self.cell_m


def rasterize(scene: EmcScene, frequency_hz: float) -> dict[str, np.ndarray]:
    """Per-cell maps of the domain at ``frequency_hz``, each of shape (nx, ny).

    Returns ``eps_r``, ``sigma_s_per_m``, ``density_kg_per_m3`` (0 off tissue) and
    ``pec`` (bool).
    """
    x, y = scene.centres_m()
    xx, yy = np.meshgrid(x, y, indexing="ij")
    shape = xx.shape
    eps = np.full(shape, scene.background.eps_r)
    sigma = np.full(shape, scene.background.sigma_s_per_m)
    rho = np.zeros(shape)
    pec = np.zeros(shape, dtype=bool)
    for obj in scene.objects:
        m = obj.contains(xx, yy)
        props = obj.properties(frequency_hz)
        eps[m], sigma[m], rho[m], pec[m] = (
            props.eps_r,
            props.sigma_s_per_m,
            props.density_kg_per_m3,
            props.pec,
        )
    return {"eps_r": eps, "sigma_s_per_m": sigma, "density_kg_per_m3": rho, "pec": pec}
