"""A controlled neural ODE: ``dx/dt = f_theta(x, u(t), p)``.

The surrogate of an ODE twin. It knows nothing of any particular twin: it maps

* patient (or scene) parameters ``p`` of shape ``(batch, n_params)``, own units,
* exogenous control signals ``u`` of shape ``(batch, n_steps, n_controls)``, each the
  mean of the signal over one integration step (piecewise constant in time),

to output trajectories ``y`` of shape ``(batch, n_steps + 1, n_outputs)`` in their own
units, on the grid ``t_k = k * step``. Normalisation of ``p``, ``u`` and ``y`` lives in
the module's buffers, fitted on the training split and exported with the weights.

The latent state starts at ``x0 = g(p)`` (the twin's own steady state is a function of
its parameters) and moves by a fixed-step Runge-Kutta scheme, the 3/8 rule that
torchdiffeq calls ``"rk4"``. Training integrates with torchdiffeq; export uses
:meth:`ControlledNeuralODE.step`, the same scheme written out, so that one step can be
exported to ONNX and looped there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["ControlledNeuralODE", "NeuralODEConfig", "Normalisation"]


@dataclass
class NeuralODEConfig:
    """Sizes of the network and the integration step.

    Attributes:
        n_params, n_controls, n_outputs: widths of ``p``, ``u`` and ``y``.
        latent_dim: width of the latent state ``x``.
        embed_dim: width of the parameter embedding fed to the vector field.
        hidden: width of the hidden layers.
        depth: number of hidden layers of the vector field.
        step: integration step, in the time unit of the dataset (e.g. minutes).
        scheme: ``"rk4"`` (the 3/8 rule, torchdiffeq's ``rk4``) or ``"midpoint"``.
    """

    n_params: int
    n_controls: int
    n_outputs: int
    latent_dim: int = 16
    embed_dim: int = 16
    hidden: int = 64
    depth: int = 2
    step: float = 5.0
    scheme: Literal["rk4", "midpoint"] = "rk4"

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Normalisation:
    """Affine maps to and from the network's scale, fitted on the training split.

    ``p_n = (p - p_mean) / p_std``, ``u_n = u / u_scale`` (``u_scale`` the root mean
    square of the training controls), ``y = y_mean + y_std * y_n``.
    """

    p_mean: list[float]
    p_std: list[float]
    u_scale: list[float]
    y_mean: list[float]
    y_std: list[float]
    extra: dict = field(default_factory=dict)

    @classmethod
    def fit(
        cls, p: Tensor, u: Tensor, y: Tensor, min_std: float = 1e-6
    ) -> Normalisation:
        """Fit on ``p (N, n_p)``, ``u (N, K, n_u)`` and ``y (N, K + 1, n_y)``."""
        p_std = p.std(dim=0, unbiased=False)
        p_std = torch.where(
            p_std > min_std * p.abs().mean(0).clamp_min(1.0), p_std, 1.0
        )
        u_scale = u.reshape(-1, u.shape[-1]).pow(2).mean(0).sqrt().clamp_min(min_std)
        y_flat = y.reshape(-1, y.shape[-1])
        return cls(
            p_mean=p.mean(0).tolist(),
            p_std=p_std.tolist(),
            u_scale=u_scale.tolist(),
            y_mean=y_flat.mean(0).tolist(),
            y_std=y_flat.std(0, unbiased=False).clamp_min(min_std).tolist(),
        )

    def as_dict(self) -> dict:
        return asdict(self)


def _mlp(n_in: int, n_out: int, hidden: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.Tanh()]
        width = hidden
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class _VectorField(nn.Module):
    """``f(x, u, e)`` with the first layer split so that the part driven by the
    control and the embedding, constant over a step, is computed once per step."""

    def __init__(self, latent: int, n_u: int, embed: int, hidden: int, depth: int):
        super().__init__()
        self.state_in = nn.Linear(latent, hidden)
        self.drive_in = nn.Linear(n_u + embed, hidden, bias=False)
        self.hidden = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth - 1))
        self.out = nn.Linear(hidden, latent)
        # A small last layer starts the dynamics near rest, which keeps early
        # rollouts bounded over hundreds of steps.
        with torch.no_grad():
            self.out.weight.mul_(0.1)
            self.out.bias.zero_()

    def drive(self, u_n: Tensor, e: Tensor) -> Tensor:
        """The control-and-embedding term of the first layer, ``(..., hidden)``."""
        e = e.expand(*u_n.shape[:-1], e.shape[-1])
        return self.drive_in(torch.cat([u_n, e], dim=-1))

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        h = torch.tanh(self.state_in(x) + c)
        for layer in self.hidden:
            h = torch.tanh(layer(h))
        return self.out(h)


class ControlledNeuralODE(nn.Module):
    """Latent neural ODE with exogenous controls and parameter conditioning.

    Args:
        config: sizes and step; see :class:`NeuralODEConfig`.
        norm: normalisation statistics; see :class:`Normalisation`.
    """

    def __init__(self, config: NeuralODEConfig, norm: Normalisation):
        super().__init__()
        self.config = config
        c = config
        for name in ("p_mean", "p_std", "u_scale", "y_mean", "y_std"):
            self.register_buffer(
                name, torch.tensor(getattr(norm, name), dtype=torch.float32)
            )
        self.encoder = _mlp(c.n_params, c.latent_dim + c.embed_dim, c.hidden, 2)
        self.field = _VectorField(
            c.latent_dim, c.n_controls, c.embed_dim, c.hidden, c.depth
        )
        self.readout = nn.Linear(c.latent_dim, c.n_outputs)

    @property
    def norm(self) -> Normalisation:
        return Normalisation(
            p_mean=self.p_mean.tolist(),
            p_std=self.p_std.tolist(),
            u_scale=self.u_scale.tolist(),
            y_mean=self.y_mean.tolist(),
            y_std=self.y_std.tolist(),
        )

    # The pieces, each a function of tensors only, so that each can be exported.

    def encode(self, p: Tensor) -> tuple[Tensor, Tensor]:
        """Initial latent state and parameter embedding from raw parameters.

        Args:
            p: ``(batch, n_params)`` in the parameters' own units.

        Returns:
            ``x0 (batch, latent_dim)`` and ``e (batch, embed_dim)``.
        """
        h = self.encoder((p - self.p_mean) / self.p_std)
        return h[:, : self.config.latent_dim], torch.tanh(
            h[:, self.config.latent_dim :]
        )

    def vector_field(self, x: Tensor, u_n: Tensor, e: Tensor) -> Tensor:
        """``dx/dt`` in units of one step; ``u_n`` is the normalised control."""
        return self.field(x, self.field.drive(u_n, e))

    def observe(self, x: Tensor) -> Tensor:
        """Outputs in their own units from latent states ``(..., latent_dim)``."""
        return self.y_mean + self.y_std * self.readout(x)

    def observe_normalised(self, x: Tensor) -> Tensor:
        return self.readout(x)

    def step(self, x: Tensor, u: Tensor, e: Tensor) -> Tensor:
        """One step of length ``step`` with the control held constant.

        Args:
            x: ``(batch, latent_dim)``; u: ``(batch, n_controls)`` raw units;
            e: ``(batch, embed_dim)``.
        """
        return self._step_driven(x, self.field.drive(u / self.u_scale, e))

    def _step_driven(self, x: Tensor, c: Tensor) -> Tensor:
        f = self.field
        if self.config.scheme == "midpoint":
            return x + f(x + 0.5 * f(x, c), c)
        k1 = f(x, c)
        k2 = f(x + k1 / 3.0, c)
        k3 = f(x + (k2 - k1 / 3.0), c)
        k4 = f(x + (k1 - k2 + k3), c)
        return x + (k1 + 3.0 * (k2 + k3) + k4) * 0.125

    # Whole trajectories.

    def latent_trajectory(
        self, p: Tensor, u: Tensor, method: str = "torchdiffeq"
    ) -> Tensor:
        """Latent states on the step grid, ``(batch, n_steps + 1, latent_dim)``,
        from the encoded initial state."""
        x0, e = self.encode(p)
        return self.rollout(x0, e, u, method)

    def rollout(
        self, x0: Tensor, e: Tensor, u: Tensor, method: str = "torchdiffeq"
    ) -> Tensor:
        """Latent states from ``x0 (batch, latent_dim)`` under controls ``u``.

        ``method="torchdiffeq"`` integrates with ``torchdiffeq.odeint`` (fixed-grid,
        perturbed at step ends so that each step sees its own control);
        ``method="step"`` loops :meth:`step`. Both are the same scheme.

        Returns:
            ``(batch, n_steps + 1, latent_dim)``, ``x0`` first.
        """
        n_steps = u.shape[1]
        c = self.field.drive(u / self.u_scale, e.unsqueeze(1))
        if method == "step":
            xs = [x0]
            for k in range(n_steps):
                xs.append(self._step_driven(xs[-1], c[:, k]))
            return torch.stack(xs, dim=1)
        if method != "torchdiffeq":
            raise ValueError(f"method {method!r}; expected 'torchdiffeq' or 'step'")
        from torchdiffeq import odeint

        def rhs(t: Tensor, x: Tensor) -> Tensor:
            k = int(torch.clamp(torch.floor(t), 0, n_steps - 1))
            return self.field(x, c[:, k])

        grid = torch.arange(n_steps + 1, dtype=x0.dtype, device=x0.device)
        solver = "rk4" if self.config.scheme == "rk4" else "midpoint"
        xs = odeint(
            rhs, x0, grid, method=solver, options={"step_size": 1.0, "perturb": True}
        )
        return xs.transpose(0, 1)

    def forward(self, p: Tensor, u: Tensor, method: str = "torchdiffeq") -> Tensor:
        """Output trajectories ``(batch, n_steps + 1, n_outputs)``, own units."""
        return self.observe(self.latent_trajectory(p, u, method))

    def forward_normalised(
        self, p: Tensor, u: Tensor, method: str = "torchdiffeq"
    ) -> Tensor:
        """Like :meth:`forward` but on the normalised output scale (for the loss)."""
        return self.readout(self.latent_trajectory(p, u, method))
