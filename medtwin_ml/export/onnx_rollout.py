"""Export a controlled neural ODE to ONNX as one rollout graph.

Unrolling hundreds of integrator steps through the exporter is slow and makes huge
graphs, and adaptive solvers do not export at all. So two small pieces are exported
with ``torch.onnx.export`` and joined by hand:

* ``encode``: ``p (batch, n_params), u (batch, n_steps, n_controls) -> x0 (batch,
  latent), b (n_steps, batch, hidden)``, where ``b`` is the part of the vector
  field's first layer that does not depend on the state (the drive of the controls
  and the parameters, plus the layer's bias), constant within a step and so computed
  once for all steps;
* ``step``: one fixed Runge-Kutta step, ``(x, b_k) -> x_next``;

and the rollout graph runs ``encode`` once, ``step`` inside an ONNX ``Scan`` over the
steps, and the read-out once over every state. The result takes raw-unit inputs and
returns raw-unit outputs, as the bundle card describes.

The graph is built for onnxruntime's per-operator cost, which for one case dwarfs the
arithmetic: the step is written so that each evaluation of the vector field is four
operators (the first layer takes ``b_k`` as its bias, the hidden layers fuse with
their activation, the last layer adds its input to the state), and nothing else runs
inside the loop.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from medtwin_ml.surrogates.neural_ode import ControlledNeuralODE

__all__ = [
    "export_rollout",
    "export_step",
    "rollout_parity",
    "step_parity",
    "visited_step_inputs",
]

logger = logging.getLogger(__name__)

OPSET = 18


class _Encode(torch.nn.Module):
    """``(p, u) -> (x0, b)``: initial state and the state-free part of the first
    layer for every step, time first: ``b (n_steps, batch, hidden)``."""

    def __init__(self, model: ControlledNeuralODE):
        super().__init__()
        self.model = model

    def forward(self, p, u):
        m = self.model
        x0, e = m.encode(p)
        b = m.field.drive(u / m.u_scale, e.unsqueeze(1)) + m.field.state_in.bias
        return x0, b.transpose(0, 1)


class _Step(torch.nn.Module):
    """``(x, b_k) -> x_next``: one step of the model's scheme, the same arithmetic as
    :meth:`ControlledNeuralODE._step_driven` with ``b_k = c_k + `` the first layer's
    bias, arranged so that every linear map is one ``Gemm``."""

    def __init__(self, model: ControlledNeuralODE):
        super().__init__()
        f = model.field
        self.scheme = model.config.scheme
        self.w_in = torch.nn.Parameter(f.state_in.weight.detach().t().contiguous())
        self.hidden = f.hidden
        self.w_out = torch.nn.Parameter(f.out.weight.detach().t().contiguous())
        self.b_out = torch.nn.Parameter(f.out.bias.detach().clone())
        # x + 0.5 * (W h + b) = (x + 0.5 b) + (0.5 W) h; halving is exact in binary.
        self.w_half = torch.nn.Parameter(0.5 * self.w_out.detach())
        self.b_half = torch.nn.Parameter(0.5 * self.b_out.detach())

    def _h(self, x, b):
        h = torch.tanh(torch.addmm(b, x, self.w_in))
        for layer in self.hidden:
            h = torch.tanh(layer(h))
        return h

    def _f(self, x, b):
        return torch.addmm(self.b_out, self._h(x, b), self.w_out)

    def forward(self, x, b):
        if self.scheme == "midpoint":
            mid = torch.addmm(x + self.b_half, self._h(x, b), self.w_half)
            return torch.addmm(x + self.b_out, self._h(mid, b), self.w_out)
        k1 = self._f(x, b)
        k2 = self._f(x + k1 / 3.0, b)
        k3 = self._f(x + (k2 - k1 / 3.0), b)
        k4 = self._f(x + (k1 - k2 + k3), b)
        return x + (k1 + 3.0 * (k2 + k3) + k4) * 0.125


def _export(
    module: torch.nn.Module,
    args: tuple,
    names: list[str],
    outs: list[str],
    dynamic: tuple[dict, ...] | None = None,
):
    batch = torch.export.Dim("batch", min=1)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = Path(tmp) / "part.onnx"
        torch.onnx.export(
            module.eval(),
            args,
            str(path),
            input_names=names,
            output_names=outs,
            dynamic_shapes=dynamic or tuple({0: batch} for _ in args),
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
            external_data=False,
        )
        return onnx.load(str(path))


def _step_args(model: ControlledNeuralODE) -> tuple[torch.Tensor, torch.Tensor]:
    c = model.config
    return torch.zeros(2, c.latent_dim), torch.zeros(2, c.hidden)


def export_step(model: ControlledNeuralODE, path: str | Path) -> Path:
    """Export one integration step ``(x, b) -> x_next`` (the body of the rollout's
    loop) to ``path``."""
    proto = _export(_Step(model), _step_args(model), ["x", "b"], ["x_next"])
    onnx.save(proto, str(path))
    return Path(path)


def _prefixed(graph: onnx.GraphProto, prefix: str, inputs: dict[str, str]):
    """Nodes, initializers and output names of ``graph`` with every name prefixed.

    ``inputs`` maps the graph's input names to the names they take in the new graph.
    """
    rename = dict(inputs)
    for init in graph.initializer:
        rename[init.name] = prefix + init.name
    for node in graph.node:
        for out in node.output:
            if out:
                rename[out] = prefix + out
    nodes = []
    for node in graph.node:
        new = onnx.NodeProto()
        new.CopyFrom(node)
        new.name = prefix + (node.name or node.op_type)
        del new.input[:]
        new.input.extend(rename.get(i, i) if i else i for i in node.input)
        del new.output[:]
        new.output.extend(rename[o] if o else o for o in node.output)
        nodes.append(new)
    inits = []
    for init in graph.initializer:
        new = onnx.TensorProto()
        new.CopyFrom(init)
        new.name = rename[init.name]
        inits.append(new)
    outputs = [rename[o.name] for o in graph.output]
    return nodes, inits, outputs


def export_rollout(model: ControlledNeuralODE, path: str | Path) -> Path:
    """Write the whole-rollout ONNX graph ``(p, u) -> y`` to ``path``.

    Shapes: ``p (batch, n_params)``, ``u (batch, n_steps, n_controls)``,
    ``y (batch, n_steps + 1, n_outputs)``, all float32 and in their own units.
    """
    c = model.config
    batch, steps = torch.export.Dim("batch", min=1), torch.export.Dim("steps", min=1)
    enc = _export(
        _Encode(model),
        (torch.zeros(2, c.n_params), torch.zeros(2, 3, c.n_controls)),
        ["p", "u"],
        ["x0", "b"],
        dynamic=({0: batch}, {0: batch, 1: steps}),
    )
    step = _export(_Step(model), _step_args(model), ["x", "b"], ["x_next"])

    enc_nodes, enc_inits, (x0, drive) = _prefixed(
        enc.graph, "enc/", {"p": "p", "u": "u"}
    )
    body_nodes, body_inits, (x_next,) = _prefixed(
        step.graph, "step/", {"x": "body/x", "b": "body/b_k"}
    )
    # Scan: carry x, take b_k from the time axis of b, scan x_next out. A value
    # cannot be two outputs of a graph, hence the one Identity.
    body = helper.make_graph(
        [*body_nodes, helper.make_node("Identity", [x_next], ["body/x_scan"])],
        "rk_step",
        [
            helper.make_tensor_value_info(
                "body/x", TensorProto.FLOAT, [None, c.latent_dim]
            ),
            helper.make_tensor_value_info(
                "body/b_k", TensorProto.FLOAT, [None, c.hidden]
            ),
        ],
        [
            helper.make_tensor_value_info(
                x_next, TensorProto.FLOAT, [None, c.latent_dim]
            ),
            helper.make_tensor_value_info(
                "body/x_scan", TensorProto.FLOAT, [None, c.latent_dim]
            ),
        ],
    )
    # Read-out with the output scaling folded in: y = x @ (R^T diag s) + (r s + m).
    std = model.y_std.detach().numpy().astype(np.float64)
    weight = model.readout.weight.detach().numpy().astype(np.float64).T * std
    bias = model.readout.bias.detach().numpy().astype(np.float64) * std
    bias += model.y_mean.detach().numpy()
    nodes = [
        *enc_nodes,
        helper.make_node(
            "Scan", [x0, drive], ["x_end", "x_rest"], body=body, num_scan_inputs=1
        ),
        helper.make_node("Unsqueeze", [x0, "axis_0"], ["x_first"]),
        helper.make_node("Concat", ["x_first", "x_rest"], ["xs"], axis=0),
        helper.make_node("MatMul", ["xs", "readout_w"], ["y_t"]),
        helper.make_node("Add", ["y_t", "readout_b"], ["y_tb"]),
        helper.make_node("Transpose", ["y_tb"], ["y"], perm=[1, 0, 2]),
    ]
    inits = [
        *enc_inits,
        *body_inits,
        helper.make_tensor("axis_0", TensorProto.INT64, [1], [0]),
        numpy_helper.from_array(weight.astype(np.float32), "readout_w"),
        numpy_helper.from_array(bias.astype(np.float32), "readout_b"),
    ]
    graph = helper.make_graph(
        nodes,
        "controlled_neural_ode_rollout",
        [
            helper.make_tensor_value_info(
                "p", TensorProto.FLOAT, ["batch", c.n_params]
            ),
            helper.make_tensor_value_info(
                "u", TensorProto.FLOAT, ["batch", "n_steps", c.n_controls]
            ),
        ],
        [
            helper.make_tensor_value_info(
                "y", TensorProto.FLOAT, ["batch", "n_steps_plus_1", c.n_outputs]
            )
        ],
        initializer=inits,
    )
    proto = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="medtwin-ml",
    )
    proto.ir_version = min(proto.ir_version, 10)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    logger.info("exported rollout graph to %s", path)
    return Path(path)


def _session(path: str | Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def step_parity(
    model: ControlledNeuralODE,
    step_path: str | Path,
    n: int = 1000,
    seed: int = 0,
    inputs: tuple[np.ndarray, np.ndarray] | None = None,
) -> float:
    """Max absolute difference of the next latent state between onnxruntime's step
    and the model's own (:meth:`ControlledNeuralODE._step_driven`).

    The latent state is of order one. ``inputs`` are ``(x, c)`` pairs to compare on,
    ``c`` the drive of :meth:`_VectorField.drive`, e.g. the states that held-out
    rollouts visit (see :func:`visited_step_inputs`); without them, ``n`` random
    inputs at the scale the model meets in use.
    """
    if inputs is None:
        c = model.config
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, c.latent_dim, generator=g)
        u = torch.rand(n, 1, c.n_controls, generator=g) * model.u_scale * 3
        e = torch.tanh(torch.randn(n, c.embed_dim, generator=g))
        with torch.no_grad():
            drive = model.field.drive(u / model.u_scale, e.unsqueeze(1))[:, 0]
    else:
        x, drive = (torch.as_tensor(a, dtype=torch.float32) for a in inputs)
    with torch.no_grad():
        x_t = model._step_driven(x, drive)
        b = drive + model.field.state_in.bias
    (x_o,) = _session(step_path).run(None, {"x": x.numpy(), "b": b.numpy()})
    return float(np.abs(x_o - x_t.numpy()).max())


def visited_step_inputs(
    model: ControlledNeuralODE,
    p: np.ndarray,
    u: np.ndarray,
    n: int = 1000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` step inputs ``(x_k, c_k)`` drawn from the rollouts of cases ``(p, u)``."""
    with torch.no_grad():
        pt, ut = torch.as_tensor(p), torch.as_tensor(u)
        x0, e = model.encode(pt)
        xs = model.rollout(x0, e, ut, method="step")[:, :-1]
        drive = model.field.drive(ut / model.u_scale, e.unsqueeze(1))
    flat_x = xs.reshape(-1, xs.shape[-1]).numpy()
    flat_c = drive.reshape(-1, drive.shape[-1]).numpy()
    pick = np.random.default_rng(seed).choice(
        len(flat_x), size=min(n, len(flat_x)), replace=False
    )
    return flat_x[pick], flat_c[pick]


def rollout_parity(
    model: ControlledNeuralODE, rollout_path: str | Path, p: np.ndarray, u: np.ndarray
) -> np.ndarray:
    """Per-output max absolute difference of whole trajectories, ONNX against torch
    (torchdiffeq), shape ``(n_outputs,)`` in the outputs' own units."""
    with torch.no_grad():
        y_t = model(torch.as_tensor(p), torch.as_tensor(u)).numpy()
    (y_o,) = _session(rollout_path).run(
        None, {"p": p.astype(np.float32), "u": u.astype(np.float32)}
    )
    return np.abs(y_o - y_t).reshape(-1, y_t.shape[-1]).max(axis=0)
