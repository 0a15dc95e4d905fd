"""The LightningModule that fits a controlled neural ODE to solver trajectories."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from medtwin_ml.surrogates.neural_ode import (
    ControlledNeuralODE,
    NeuralODEConfig,
    Normalisation,
)

__all__ = ["SurrogateModule", "horizon_fraction"]


def horizon_fraction(curriculum: list[tuple[int, float]], epoch: int) -> float:
    """Fraction of the horizon trained on at ``epoch``: the last stage begun."""
    fraction = 1.0
    for first_epoch, frac in sorted(curriculum):
        if epoch >= first_epoch:
            fraction = frac
    return fraction


class SurrogateModule(L.LightningModule):
    """Trains on the normalised outputs; reports errors in the outputs' own units.

    Args:
        model_config: :class:`NeuralODEConfig` fields.
        norm: :class:`Normalisation` fields, fitted on the training split.
        target_weights: loss weight per output, ``(n_outputs,)``.
        primary: index of the output whose RMSE and MARD are logged.
        lr, weight_decay, max_epochs: AdamW with cosine decay over ``max_epochs``.
        curriculum: ``(first epoch, horizon fraction)`` pairs.
        integrator: ``"torchdiffeq"`` (``odeint``, fixed-grid) or ``"step"`` (the
            same scheme as an explicit loop, which is what is exported).
    """

    def __init__(
        self,
        model_config: dict[str, Any],
        norm: dict[str, Any],
        target_weights: list[float],
        primary: int = 0,
        lr: float = 3e-3,
        weight_decay: float = 1e-5,
        max_epochs: int = 30,
        curriculum: list[tuple[int, float]] | None = None,
        integrator: str = "torchdiffeq",
    ):
        super().__init__()
        self.save_hyperparameters()
        self.model = ControlledNeuralODE(
            NeuralODEConfig(**model_config), Normalisation(**norm)
        )
        self.register_buffer(
            "weights", torch.tensor(target_weights, dtype=torch.float32)
        )
        self._val: list[torch.Tensor] = []

    def _loss(self, p, u, y, n_steps: int) -> torch.Tensor:
        pred = self.model.forward_normalised(
            p, u[:, :n_steps], method=self.hparams.integrator
        )
        target = (y[:, : n_steps + 1] - self.model.y_mean) / self.model.y_std
        return ((pred - target) ** 2 * self.weights).mean() / self.weights.mean()

    def training_step(self, batch, batch_idx):
        p, u, y = batch
        frac = horizon_fraction(
            self.hparams.curriculum or [(0, 1.0)], self.current_epoch
        )
        n_steps = max(1, round(frac * u.shape[1]))
        loss = self._loss(p, u, y, n_steps)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(p))
        return loss

    def validation_step(self, batch, batch_idx):
        p, u, y = batch
        pred = self.model(p, u, method=self.hparams.integrator)
        target_n = (y - self.model.y_mean) / self.model.y_std
        pred_n = (pred - self.model.y_mean) / self.model.y_std
        loss = (((pred_n - target_n) ** 2) * self.weights).mean() / self.weights.mean()
        k = self.hparams.primary
        err = pred[..., k] - y[..., k]
        self._val.append(
            torch.stack(
                [
                    loss * len(p),
                    (err**2).mean(dim=1).sum(),
                    (err.abs() / y[..., k].abs().clamp_min(1e-6)).mean(dim=1).sum(),
                    torch.tensor(float(len(p)), device=p.device),
                ]
            )
        )

    def on_validation_epoch_end(self):
        if not self._val:
            return
        total = torch.stack(self._val).sum(0)
        self._val.clear()
        n = total[3]
        self.log("val_loss", total[0] / n, prog_bar=True)
        self.log("val_rmse", torch.sqrt(total[1] / n), prog_bar=True)
        self.log("val_mard_pct", 100 * total[2] / n, prog_bar=True)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(
            self.parameters(),
            lr=self.hparams.lr,
            weight_decay=self.hparams.weight_decay,
        )
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=self.hparams.max_epochs, eta_min=self.hparams.lr * 0.02
        )
        return {
            "optimizer": opt,
            "lr_scheduler": {"scheduler": sched, "interval": "epoch"},
        }
