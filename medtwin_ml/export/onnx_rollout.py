"""Export a controlled neural ODE to ONNX as one rollout graph.

Unrolling hundreds of integrator steps through the exporter is slow and makes huge
graphs, and adaptive solvers do not export at all. So two small pieces are exported
with ``torch.onnx.export`` and joined by hand:

* ``encode``: ``p (batch, n_params), u (batch, n_steps, n_controls) -> x0 (batch,
  latent), c (batch, n_steps, hidden), y0 (batch, n_outputs)``, where ``c`` is the
  part of the vector field's first layer driven by the controls and the parameters,
  constant within a step and so computed once for all steps;
* ``step``: one fixed Runge-Kutta step, ``(x, c_k) -> (x_next, y_next)``;

(``y0`` and ``y_next`` on the network's normalised scale),

and the rollout graph runs ``encode`` once and ``step`` inside an ONNX ``Loop`` whose
trip count is the length of ``u``'s time axis. The result takes raw-unit inputs and
returns raw-unit outputs, as the bundle card describes.
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
    """``(p, u) -> (x0, c, y0)``: initial state, the control-and-parameter drive of
    every step (constant within a step, so computed once for all steps), first
    outputs."""

    def __init__(self, model: ControlledNeuralODE):
        super().__init__()
        self.model = model

    def forward(self, p, u):
        m = self.model
        x0, e = m.encode(p)
        c = m.field.drive(u / m.u_scale, e.unsqueeze(1))
        return x0, c, m.observe_normalised(x0)


class _Step(torch.nn.Module):
    """``(x, c_k) -> (x_next, y_next)``: one step under the drive of step ``k``."""

    def __init__(self, model: ControlledNeuralODE):
        super().__init__()
        self.model = model

    def forward(self, x, c):
        x_next = self.model._step_driven(x, c)
        return x_next, self.model.observe_normalised(x_next)


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
    """Export one integration step ``(x, c) -> (x_next, y_next)`` to ``path``."""
    proto = _export(_Step(model), _step_args(model), ["x", "c"], ["x_next", "y_next"])
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
        ["x0", "c", "y0"],
        dynamic=({0: batch}, {0: batch, 1: steps}),
    )
    step = _export(_Step(model), _step_args(model), ["x", "c"], ["x_next", "y_next"])

    enc_nodes, enc_inits, (x0, drive, y0) = _prefixed(
        enc.graph, "enc/", {"p": "p", "u": "u"}
    )
    body_nodes, body_inits, (x_next, y_next) = _prefixed(
        step.graph, "step/", {"x": "body/x", "c": "body/c_k"}
    )

    # The loop body: c_k = c[:, k]; one step; carry x; scan out y.
    body = helper.make_graph(
        [
            helper.make_node("Gather", [drive, "body/iter"], ["body/c_k"], axis=1),
            *body_nodes,
            helper.make_node("Identity", ["body/cond"], ["body/cond_out"]),
            helper.make_node("Identity", [x_next], ["body/x_out"]),
            helper.make_node("Identity", [y_next], ["body/y_out"]),
        ],
        "rk_step",
        [
            helper.make_tensor_value_info("body/iter", TensorProto.INT64, []),
            helper.make_tensor_value_info("body/cond", TensorProto.BOOL, []),
            helper.make_tensor_value_info(
                "body/x", TensorProto.FLOAT, [None, c.latent_dim]
            ),
        ],
        [
            helper.make_tensor_value_info("body/cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info(
                "body/x_out", TensorProto.FLOAT, [None, c.latent_dim]
            ),
            helper.make_tensor_value_info(
                "body/y_out", TensorProto.FLOAT, [None, c.n_outputs]
            ),
        ],
    )
    nodes = [
        *enc_nodes,
        helper.make_node("Shape", ["u"], ["n_steps"], start=1, end=2),
        helper.make_node("Squeeze", ["n_steps"], ["trip_count"]),
        helper.make_node(
            "Loop", ["trip_count", "keep_going", x0], ["x_end", "y_scan"], body=body
        ),
        helper.make_node("Transpose", ["y_scan"], ["y_rest"], perm=[1, 0, 2]),
        helper.make_node("Unsqueeze", [y0, "axis_1"], ["y_first"]),
        helper.make_node("Concat", ["y_first", "y_rest"], ["y_n"], axis=1),
        helper.make_node("Mul", ["y_n", "y_std"], ["y_scaled"]),
        helper.make_node("Add", ["y_scaled", "y_mean"], ["y"]),
    ]
    inits = [
        *enc_inits,
        *body_inits,
        helper.make_tensor("keep_going", TensorProto.BOOL, [], [True]),
        helper.make_tensor("axis_1", TensorProto.INT64, [1], [1]),
        numpy_helper.from_array(model.y_std.numpy().astype(np.float32), "y_std"),
        numpy_helper.from_array(model.y_mean.numpy().astype(np.float32), "y_mean"),
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
    """Max absolute difference of the step's outputs between onnxruntime and PyTorch.

    The step function returns the next latent state and the normalised outputs, both
    of order one. ``inputs`` are ``(x, c)`` pairs to compare on, e.g. the states
    that held-out rollouts visit (see :func:`visited_step_inputs`); without them,
    ``n`` random inputs at the scale the model meets in use.
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
        x_t, y_t = _Step(model)(x, drive)
    x_o, y_o = _session(step_path).run(None, {"x": x.numpy(), "c": drive.numpy()})
    return float(max(np.abs(x_o - x_t.numpy()).max(), np.abs(y_o - y_t.numpy()).max()))


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
