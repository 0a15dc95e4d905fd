"""The dataset generation config (``configs/datasets/*.yaml``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from medtwin_ml.config import BoundaryModel

__all__ = ["DatasetConfig"]


class DatasetConfig(BoundaryModel):
    """What ``medtwin generate`` draws and solves.

    Cases are ``n_patients`` virtual patients from ``cohort``, each with
    ``scenarios_per_patient`` device-and-scenario settings drawn from the twin's input
    domain by a seeded space-filling design. The same config and seed always give
    the same cases and, shard for shard, the same bytes.
    """

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        description="Dataset name; its folder under the workspace's datasets/.",
    )
    twin: str = Field(description="Registered twin, e.g. 'diabetes'.")
    cohort: str = Field(description="A cohort the twin ships, e.g. 'korean_adult'.")
    n_patients: int = Field(ge=1, le=1_000_000)
    scenarios_per_patient: int = Field(default=1, ge=1, le=10_000)
    design: Literal["sobol", "lhs", "random"] = "sobol"
    seed: int = Field(ge=0, description="Seed of the cohort draw and the design.")
    shard_size: int = Field(
        default=256, ge=1, le=100_000, description="Cases per stored shard."
    )
    domain: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="Narrower bounds for some of the twin's domain variables.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Twin-specific case options, e.g. {'duration_min': 1440}.",
    )

    @property
    def n_cases(self) -> int:
        return self.n_patients * self.scenarios_per_patient
