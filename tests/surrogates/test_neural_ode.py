from __future__ import annotations

import pytest
import torch

from medtwin_ml.surrogates.neural_ode import (
    ControlledNeuralODE,
    NeuralODEConfig,
    Normalisation,
)


def _model(scheme="rk4", seed=0):
    g = torch.Generator().manual_seed(seed)
    p = torch.rand(32, 5, generator=g) * 10 + 1
    u = torch.rand(32, 12, 2, generator=g)
    y = torch.rand(32, 13, 3, generator=g) * 100
    torch.manual_seed(seed)
    cfg = NeuralODEConfig(
        n_params=5, n_controls=2, n_outputs=3, hidden=16, scheme=scheme
    )
    return ControlledNeuralODE(cfg, Normalisation.fit(p, u, y)), p, u


@pytest.mark.parametrize("scheme", ["rk4", "midpoint"])
def test_torchdiffeq_and_explicit_steps_are_the_same_scheme(scheme):
    model, p, u = _model(scheme)
    with torch.no_grad():
        a = model(p, u, method="torchdiffeq")
        b = model(p, u, method="step")
    assert a.shape == (32, 13, 3)
    # Float32 rounding over 12 steps of outputs of order 100.
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)


def test_each_step_sees_its_own_control():
    """A control pulse in step k changes nothing before t_{k+1}."""
    model, p, u = _model()
    u = torch.zeros_like(u)
    pulsed = u.clone()
    pulsed[:, 5, 0] = 3.0
    with torch.no_grad():
        a, b = model(p, u), model(p, pulsed)
    torch.testing.assert_close(a[:, :6], b[:, :6], rtol=0, atol=0)
    assert (a[:, 6] - b[:, 6]).abs().max() > 1e-4


def test_gradients_reach_every_trainable_parameter():
    model, p, u = _model()
    model.forward_normalised(p, u).pow(2).mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_normalisation_is_fitted_on_what_it_is_given():
    p = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    u = torch.tensor([[[0.0], [2.0]], [[0.0], [2.0]]])
    y = torch.tensor([[[10.0], [20.0]], [[10.0], [20.0]]])
    norm = Normalisation.fit(p, u[:, :1], y)
    assert norm.p_mean == [2.0, 5.0]
    assert norm.p_std[0] == pytest.approx(1.0) and norm.p_std[1] == 1.0  # constant
    assert norm.y_mean == [15.0] and norm.y_std == [5.0]
