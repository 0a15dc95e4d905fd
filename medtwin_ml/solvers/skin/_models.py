"""Boundary models of the skin twin: layered tissue, a heating applicator, a run."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from medtwin_ml.config import BoundaryModel

__all__ = ["LAYERS", "SkinDevice", "SkinParameters", "SkinScenario"]

LAYERS = ("epidermis", "dermis", "subcutis", "inner")


class SkinParameters(BoundaryModel):
    """Tissue layers (Jiang et al., Burns 28:713, 2002) and damage kinetics.

    The inner tissue fills the domain below the subcutis down to the scenario's
    ``domain_depth_mm``, whose bottom is held at the core temperature. Perfusion is
    the volumetric blood flow per tissue volume (1/s). The layer set quotes no
    metabolic heat, so it defaults to zero.
    """

    epidermis_thickness_mm: float = Field(default=0.08, ge=0.02, le=1.0)
    dermis_thickness_mm: float = Field(default=2.0, ge=0.3, le=6.0)
    subcutis_thickness_mm: float = Field(default=10.0, ge=0.5, le=30.0)

    epidermis_conductivity_w_per_m_k: float = Field(default=0.24, gt=0.05, le=2)
    dermis_conductivity_w_per_m_k: float = Field(default=0.45, gt=0.05, le=2)
    subcutis_conductivity_w_per_m_k: float = Field(default=0.19, gt=0.05, le=2)
    inner_conductivity_w_per_m_k: float = Field(default=0.5, gt=0.05, le=2)

    epidermis_density_kg_m3: float = Field(default=1200.0, ge=800, le=1500)
    dermis_density_kg_m3: float = Field(default=1200.0, ge=800, le=1500)
    subcutis_density_kg_m3: float = Field(default=1000.0, ge=800, le=1500)
    inner_density_kg_m3: float = Field(default=1000.0, ge=800, le=1500)

    epidermis_specific_heat_j_per_kg_k: float = Field(default=3590.0, ge=1000, le=5000)
    dermis_specific_heat_j_per_kg_k: float = Field(default=3300.0, ge=1000, le=5000)
    subcutis_specific_heat_j_per_kg_k: float = Field(default=2500.0, ge=1000, le=5000)
    inner_specific_heat_j_per_kg_k: float = Field(default=4000.0, ge=1000, le=5000)

    epidermis_perfusion_per_s: float = Field(default=0.0, ge=0, le=0.05)
    dermis_perfusion_per_s: float = Field(default=0.00125, ge=0, le=0.05)
    subcutis_perfusion_per_s: float = Field(default=0.00125, ge=0, le=0.05)
    inner_perfusion_per_s: float = Field(default=0.00125, ge=0, le=0.05)

    epidermis_metabolic_w_per_m3: float = Field(default=0.0, ge=0, le=1e5)
    dermis_metabolic_w_per_m3: float = Field(default=0.0, ge=0, le=1e5)
    subcutis_metabolic_w_per_m3: float = Field(default=0.0, ge=0, le=1e5)
    inner_metabolic_w_per_m3: float = Field(default=0.0, ge=0, le=1e5)

    blood_density_kg_m3: float = Field(default=1060.0, ge=900, le=1200)
    blood_specific_heat_j_per_kg_k: float = Field(default=3770.0, ge=3000, le=4500)
    arterial_temperature_c: float = Field(default=37.0, ge=30, le=42)
    core_temperature_c: float = Field(default=37.0, ge=30, le=42)

    damage_frequency_factor_per_s: float = Field(
        default=3.1e98, gt=0, description="Arrhenius A (1/s), Henriques and Moritz."
    )
    damage_activation_energy_j_per_mol: float = Field(default=6.28e5, gt=0, le=2e6)


class SkinDevice(BoundaryModel):
    """A heating applicator, on from ``t = 0`` for ``heating_duration_s``.

    ``mode`` chooses the heat source; only that mode's fields are used:

    * ``contact``: the skin under the applicator is held at ``contact_temperature_c``;
    * ``flux``: ``surface_flux_w_per_m2`` enters the skin under the applicator;
    * ``rf``: absorption ``sar_w_per_kg`` at the surface decaying over
      ``penetration_depth_mm``;
    * ``light``: Beer-Lambert absorption of ``irradiance_w_per_m2`` with
      ``attenuation_per_mm`` after ``reflectance`` at the surface.

    Away from the applicator, and after it is off, the skin loses heat to the air.
    In 1D the applicator covers the whole surface. ``seed`` is accepted for the
    common CLI and unused: the solver is deterministic.
    """

    mode: Literal["contact", "flux", "rf", "light"] = "contact"
    heating_duration_s: float = Field(default=60.0, ge=0, le=7200)
    applicator_radius_mm: float = Field(default=5.0, gt=0, le=100)
    contact_temperature_c: float = Field(default=44.0, ge=0, le=100)
    surface_flux_w_per_m2: float = Field(default=2000.0, ge=0, le=1e6)
    sar_w_per_kg: float = Field(default=20.0, ge=0, le=1e5)
    penetration_depth_mm: float = Field(default=5.0, gt=0.01, le=100)
    irradiance_w_per_m2: float = Field(default=2000.0, ge=0, le=1e7)
    attenuation_per_mm: float = Field(default=1.0, gt=0.01, le=100)
    reflectance: float = Field(default=0.05, ge=0, lt=1)
    seed: int = Field(default=0, description="Unused: the solver is deterministic.")


class SkinScenario(BoundaryModel):
    """The run: duration, numerics, geometry and the surroundings.

    The depth grid has cells of ``min_cell_um`` at the surface growing by 10 % per
    cell up to ``max_cell_um``; the axisymmetric grid adds ``n_radial`` equal rings
    out to ``domain_radius_mm`` (no heat crosses the outer radius).
    """

    duration_s: float = Field(default=120.0, gt=0, le=7200)
    time_step_s: float = Field(default=0.05, ge=1e-4, le=5)
    output_interval_s: float = Field(default=1.0, ge=1e-4, le=600)
    geometry: Literal["1d", "axisymmetric"] = "1d"
    domain_depth_mm: float = Field(default=40.0, ge=2, le=100)
    domain_radius_mm: float = Field(default=20.0, ge=1, le=200)
    n_radial: int = Field(default=40, ge=2, le=400)
    min_cell_um: float = Field(default=10.0, ge=1, le=1000)
    max_cell_um: float = Field(default=500.0, ge=1, le=5000)
    ambient_temperature_c: float = Field(default=25.0, ge=-20, le=60)
    air_heat_transfer_w_per_m2_k: float = Field(default=10.0, ge=0, le=1000)

    @model_validator(mode="after")
    def _grids(self) -> SkinScenario:
        for name, value in (
            ("duration_s", self.duration_s),
            ("output_interval_s", self.output_interval_s),
        ):
            ratio = value / self.time_step_s
            if abs(ratio - round(ratio)) > 1e-6 * max(1.0, ratio):
                raise ValueError(
                    f"{name} {value} is not a whole number of time_step_s "
                    f"{self.time_step_s}"
                )
        ratio = self.duration_s / self.output_interval_s
        if abs(ratio - round(ratio)) > 1e-6 * max(1.0, ratio):
            raise ValueError(
                f"duration_s {self.duration_s} is not a whole number of "
                f"output_interval_s {self.output_interval_s}"
            )
        if self.max_cell_um < self.min_cell_um:
            raise ValueError(
                f"max_cell_um {self.max_cell_um} is below min_cell_um "
                f"{self.min_cell_um}"
            )
        return self
