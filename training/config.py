"""The training config (``configs/models/*.yaml``). Pure pydantic: no torch here."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from medtwin_ml.config import BoundaryModel

__all__ = [
    "ModelSection",
    "OptimSection",
    "SignalsSection",
    "SplitSection",
    "TrackingSection",
    "TrainConfig",
]


class SignalsSection(BoundaryModel):
    """Which dataset columns the surrogate reads and predicts."""

    controls: list[str] = Field(
        min_length=1,
        description="Dataset outputs that are exogenous inputs u(t), as amounts per "
        "grid interval (e.g. insulin_delivered_u, carbs_eaten_g).",
    )
    targets: list[str] = Field(
        min_length=1, description="Dataset outputs the surrogate predicts."
    )
    parameters: list[str] | Literal["auto"] = Field(
        default="auto",
        description="Case parameters used as conditioning p; 'auto' takes every "
        "numeric parameter that varies across the dataset.",
    )
    primary: str | None = Field(
        default=None,
        description="Target that accuracy figures are quoted for; default the first.",
    )
    target_weights: dict[str, float] = Field(
        default_factory=dict, description="Loss weight per target (default 1)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> SignalsSection:
        if self.primary is not None and self.primary not in self.targets:
            raise ValueError(f"primary {self.primary!r} is not one of the targets")
        unknown = set(self.target_weights) - set(self.targets)
        if unknown:
            raise ValueError(f"target_weights names non-targets: {sorted(unknown)}")
        return self


class ModelSection(BoundaryModel):
    latent_dim: int = Field(default=16, ge=1, le=1024)
    embed_dim: int = Field(default=16, ge=1, le=1024)
    hidden: int = Field(default=64, ge=1, le=4096)
    depth: int = Field(default=2, ge=1, le=8)
    step: float = Field(
        default=10.0, gt=0, description="Integration step, in the dataset's time unit."
    )
    scheme: Literal["rk4", "midpoint"] = "rk4"


class OptimSection(BoundaryModel):
    lr: float = Field(default=3e-3, gt=0, le=1)
    weight_decay: float = Field(default=1e-5, ge=0)
    batch_size: int = Field(default=64, ge=1)
    max_epochs: int = Field(default=30, ge=1)
    patience: int = Field(default=8, ge=1, description="Early-stopping patience.")
    grad_clip: float = Field(default=1.0, gt=0)
    horizon_curriculum: list[tuple[int, float]] = Field(
        default_factory=lambda: [(0, 0.25), (2, 0.5), (4, 1.0)],
        description="(first epoch, fraction of the horizon trained on) pairs.",
    )
    integrator: Literal["torchdiffeq", "step"] = Field(
        default="torchdiffeq",
        description="torchdiffeq's fixed-grid odeint, or the same scheme as an "
        "explicit loop of steps (what is exported; faster on a CPU).",
    )
    max_time_min: float | None = Field(
        default=None, gt=0, description="Wall-clock limit of the fit, in minutes."
    )
    checkpoint_every_n_steps: int = Field(default=20, ge=1)


class SplitSection(BoundaryModel):
    """Splits are by patient, never by time step."""

    val_fraction: float = Field(default=0.1, gt=0, lt=0.5)
    test_fraction: float = Field(default=0.1, gt=0, lt=0.5)


class TrackingSection(BoundaryModel):
    experiment: str = Field(default="surrogates", pattern=r"^[A-Za-z0-9._-]+$")
    registered_model: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    alias: str = "candidate"


class TrainConfig(BoundaryModel):
    """What ``medtwin train`` fits, on what, and where it is tracked."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    dataset: str = Field(description="Dataset name in the workspace, or a folder.")
    seed: int = Field(default=0, ge=0)
    signals: SignalsSection
    model: ModelSection = Field(default_factory=ModelSection)
    optim: OptimSection = Field(default_factory=OptimSection)
    split: SplitSection = Field(default_factory=SplitSection)
    tracking: TrackingSection
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    precision: Literal["auto", "32-true", "bf16-mixed"] = Field(
        default="auto",
        description="'auto': bf16-mixed on a GPU that supports it, else 32-true.",
    )
    threads: int | None = Field(
        default=None, ge=1, description="CPU threads for torch; default all cores."
    )
