"""A small real bundle for the serving tests, built without torch.

The model is a real ONNX graph run by real onnxruntime, linear so that every answer can
be checked against NumPy::

    y[:, 0, :] = p @ A + c                 (starts from Gb, Gb and Ib)
    y[:, k, :] = y[:, 0, :] + (sum of u[:, :k, :]) @ W      for k = 1 .. K

with ``p (batch, 33)`` the diabetes parameters the equations read, ``u (batch, K, 2)``
insulin and carbohydrate per minute averaged over each 10-minute step, and ``y (batch,
K + 1, 3)`` plasma glucose, subcutaneous glucose and plasma insulin.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

KEY = "test-key-0123456789abcdef"
OTHER_KEY = "other-key-0123456789abcdef"
STEP_MIN = 10.0
MODEL = "diabetes-linear"

PARAMETERS = (
    "BW Gb Ib kabs kmax kmin b d Vg Vi Vmx Km0 k1 k2 p2u m1 m2 m4 m30 ki kp1 kp2 kp3 "
    "f ke1 ke2 Fsnc Vm0 kd ksc ka1 ka2 u2ss"
).split()
CONTROLS = ("insulin_delivered_u", "carbs_eaten_g")
OUTPUTS = (
    "plasma_glucose_mg_dl",
    "subcutaneous_glucose_mg_dl",
    "plasma_insulin_pmol_l",
)
# Effect of one step's mean control (per minute) on the outputs.
W = np.array([[-300.0, -300.0, 2000.0], [30.0, 30.0, 0.0]], dtype=np.float32)
HALF_WIDTH = 7.5


def linear_model() -> tuple[np.ndarray, np.ndarray]:
    """``A (33, 3)`` and ``c (3,)`` of the initial outputs."""
    a = np.zeros((len(PARAMETERS), 3), dtype=np.float32)
    a[PARAMETERS.index("Gb"), 0] = a[PARAMETERS.index("Gb"), 1] = 1.0
    a[PARAMETERS.index("Ib"), 2] = 1.0
    return a, np.zeros(3, dtype=np.float32)


def expected_outputs(p: np.ndarray, u: np.ndarray) -> np.ndarray:
    """What the graph computes, in NumPy: ``(batch, K + 1, 3)``."""
    a, c = linear_model()
    y0 = p @ a + c
    cum = np.cumsum(u, axis=1) @ W
    return np.concatenate([y0[:, None, :], y0[:, None, :] + cum], axis=1)


def _onnx_model(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    a, c = linear_model()
    nodes = [
        helper.make_node("MatMul", ["p", "A"], ["pa"]),
        helper.make_node("Add", ["pa", "c"], ["y0"]),
        helper.make_node("Unsqueeze", ["y0", "axis1"], ["y0_3d"]),
        helper.make_node("CumSum", ["u", "axis_scalar"], ["ucum"]),
        helper.make_node("MatMul", ["ucum", "W"], ["dy"]),
        helper.make_node("Add", ["y0_3d", "dy"], ["y_rest"]),
        helper.make_node("Concat", ["y0_3d", "y_rest"], ["y"], axis=1),
    ]
    inits = [
        numpy_helper.from_array(a, "A"),
        numpy_helper.from_array(c, "c"),
        numpy_helper.from_array(W, "W"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
        numpy_helper.from_array(np.array(1, dtype=np.int64), "axis_scalar"),
    ]
    graph = helper.make_graph(
        nodes,
        "linear_rollout",
        [
            helper.make_tensor_value_info(
                "p", TensorProto.FLOAT, ["batch", len(PARAMETERS)]
            ),
            helper.make_tensor_value_info(
                "u", TensorProto.FLOAT, ["batch", "steps", len(CONTROLS)]
            ),
        ],
        [
            helper.make_tensor_value_info(
                "y", TensorProto.FLOAT, ["batch", "points", len(OUTPUTS)]
            )
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_test_bundle(out: Path, *, uncertainty: bool = True) -> Path:
    """Write the linear bundle to ``out``: parameter bounds from 200 korean_adult
    patients, a 144-step (one day) horizon, split-conformal half-widths."""
    from medtwin_ml.export.bundle import BundleCard, Integration, Signal, write_bundle
    from medtwin_ml.registry import get_twin
    from medtwin_ml.twin import field_unit

    twin = get_twin("diabetes")
    patients = twin.sample_cohort("korean_adult", 200, 0)
    p = np.array([[getattr(q, n) for n in PARAMETERS] for q in patients])
    units = {q.name: q.unit for q in twin.outputs}
    card = BundleCard(
        name=MODEL,
        version="3",
        twin="diabetes",
        parameters=[
            Signal(name=n, unit=field_unit(twin.parameters, n)) for n in PARAMETERS
        ],
        controls=[Signal(name=n, unit=f"{units[n]} per 1 min") for n in CONTROLS],
        outputs=[Signal(name=n, unit=units[n]) for n in OUTPUTS],
        integration=Integration(
            step=STEP_MIN, data_step=1.0, time_name="time_min", time_unit="min"
        ),
        input_domain={
            "parameters": {
                n: [float(p[:, j].min()), float(p[:, j].max())]
                for j, n in enumerate(PARAMETERS)
            },
            "horizon_steps": 144,
            "cohort": "korean_adult",
        },
        uncertainty=(
            {
                "method": "split_conformal",
                "level": 0.9,
                "half_width": {"plasma_glucose_mg_dl": HALF_WIDTH},
            }
            if uncertainty
            else {}
        ),
        validation={"held_out_patients": {"plasma_glucose_mg_dl.rmse": 4.2}},
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    model_path = _onnx_model(out.parent / f"{out.name}.onnx")
    return write_bundle(out, model_path, card)


@pytest.fixture(scope="session")
def bundle_root(tmp_path_factory) -> Path:
    """A folder holding the one linear bundle."""
    root = tmp_path_factory.mktemp("bundles")
    write_test_bundle(root / "linear")
    (root / "linear.onnx").unlink()
    return root


@pytest.fixture()
def tampered_root(bundle_root, tmp_path) -> Path:
    """A copy of the bundle folder whose model has one byte changed."""
    root = tmp_path / "tampered"
    shutil.copytree(bundle_root, root)
    model = root / "linear" / "model.onnx"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0x01
    model.write_bytes(bytes(data))
    return root


@pytest.fixture(scope="session")
def app(bundle_root):
    from serving import ApiKeys, ServingSettings, create_app

    return create_app(
        ServingSettings(
            bundles=bundle_root,
            api_keys=ApiKeys([KEY, OTHER_KEY]),
            max_body_bytes=200_000,
            max_compare_cases=4,
        )
    )


def client_class():
    """FastAPI's TestClient. Starlette 1.x warns that it prefers the httpx2 package
    over httpx for it; the warning is about the test client only, not the app."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    return TestClient


@pytest.fixture()
def client(app):
    TestClient = client_class()
    with TestClient(app, raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {KEY}"
        yield c


def patient(i: int = 0) -> dict:
    """Parameters of korean_adult patient ``i`` (seed 0) as JSON."""
    from medtwin_ml.registry import get_twin

    twin = get_twin("diabetes")
    return twin.sample_cohort("korean_adult", i + 1, 0)[i].model_dump(
        mode="json", exclude_none=True
    )


def scenario(duration_min: int = 360) -> dict:
    return {
        "duration_min": duration_min,
        "meals": [{"time_min": 60, "carbs_g": 50}, {"time_min": 240, "carbs_g": 70}],
        "basal_u_per_h": 0.9,
        "boluses": [{"time_min": 60, "units": 4.0}, {"time_min": 240, "units": 5.5}],
    }
