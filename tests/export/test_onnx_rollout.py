"""The exported rollout graph computes what the PyTorch model computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medtwin_ml.export.onnx_rollout import (
    export_rollout,
    export_step,
    rollout_parity,
    step_parity,
)
from medtwin_ml.surrogates.neural_ode import (
    ControlledNeuralODE,
    NeuralODEConfig,
    Normalisation,
)


@pytest.fixture(scope="module", params=["rk4", "midpoint"])
def model(request):
    g = torch.Generator().manual_seed(1)
    p = torch.rand(16, 4, generator=g) * 50 + 10
    u = torch.rand(16, 20, 2, generator=g)
    y = torch.rand(16, 21, 2, generator=g) * 100 + 50
    torch.manual_seed(1)
    cfg = NeuralODEConfig(
        n_params=4, n_controls=2, n_outputs=2, hidden=16, depth=3, scheme=request.param
    )
    m = ControlledNeuralODE(cfg, Normalisation.fit(p, u, y)).eval()
    with torch.no_grad():
        # Away from the near-rest start, so that every layer matters to the answer.
        m.field.out.weight.mul_(10.0)
        m.field.out.bias.normal_(0.0, 0.1, generator=g)
    return m, p, u


def test_step_parity_on_1000_inputs(model, tmp_path):
    m, _, _ = model
    path = export_step(m, tmp_path / "step.onnx")
    assert step_parity(m, path, n=1000) <= 1e-5


def test_rollout_parity_for_any_batch_and_horizon(model, tmp_path):
    import onnxruntime as ort

    m, p, u = model
    path = export_rollout(m, tmp_path / "rollout.onnx")
    # Outputs of order 100 in float32: a few ulps.
    assert rollout_parity(m, path, p.numpy(), u.numpy()).max() <= 1e-3
    session = ort.InferenceSession(str(path))
    for batch, steps in ((1, 1), (3, 7), (16, 20)):
        (y,) = session.run(
            None, {"p": p[:batch].numpy(), "u": u[:batch, :steps].numpy()}
        )
        with torch.no_grad():
            ref = m(p[:batch], u[:batch, :steps]).numpy()
        assert y.shape == (batch, steps + 1, 2)
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-3)


def test_a_midpoint_step_is_nine_operators_with_one_hidden_layer(tmp_path):
    import onnx

    cfg = NeuralODEConfig(
        n_params=3, n_controls=2, n_outputs=2, hidden=32, depth=1, scheme="midpoint"
    )
    norm = Normalisation([0.0] * 3, [1.0] * 3, [1.0] * 2, [0.0] * 2, [1.0] * 2)
    m = ControlledNeuralODE(cfg, norm).eval()
    with torch.no_grad():
        m.field.out.bias.fill_(0.01)  # unequal biases stay two constants
    path = export_rollout(m, tmp_path / "rollout.onnx")
    (scan,) = [n for n in onnx.load(str(path)).graph.node if n.op_type == "Scan"]
    body = [n.op_type for n in scan.attribute[0].g.node]
    # Per evaluation: first layer with its bias, tanh, last layer onto the state.
    assert sorted(body) == sorted(["Add", "Gemm", "Tanh", "Gemm"] * 2 + ["Identity"])
