"""Training end to end on a tiny dataset: tracking, export, registry, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tests.training.conftest import toy_train_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(toy_workspace):
    from training.train import train

    return train(toy_train_config(), toy_workspace, progress_bar=False)


def test_run_is_tracked_with_metrics_figure_dataset_and_model(trained, toy_workspace):
    from mlflow.tracking import MlflowClient

    from medtwin_ml.datasets import open_dataset

    c = MlflowClient(toy_workspace.tracking_uri, toy_workspace.tracking_uri)
    run = c.get_run(trained.run_id)
    assert (
        run.data.params["dataset_sha256"]
        == open_dataset(toy_workspace.dataset("toy")).sha256
    )
    history = c.get_metric_history(trained.run_id, "val_loss")
    assert len(history) == 12  # one per epoch
    assert min(h.value for h in history) < history[0].value
    assert "test_level_mg_l.rmse" in run.data.metrics
    artifacts = {a.path for a in c.list_artifacts(trained.run_id, "figures")}
    assert artifacts == {"figures/validation.png"}
    inputs = run.inputs.dataset_inputs
    assert inputs and inputs[0].dataset.name == "toy"
    version = c.get_model_version_by_alias("toy-node", "candidate")
    assert version.run_id == trained.run_id
    assert str(version.version) == trained.model_version
    # Artifacts live in the workspace, not in ./mlruns.
    assert run.info.artifact_uri.startswith(toy_workspace.artifacts.as_uri())


def test_parity_of_exported_step_and_rollout(trained):
    assert trained.parity["step_max_abs_error"] <= 1e-5
    assert trained.parity["level_mg_l.rollout_max_abs_error"] <= 1e-3


def test_export_writes_a_verified_bundle_that_runs(trained, toy_workspace, tmp_path):
    import onnxruntime as ort

    from medtwin_ml.datasets import open_dataset
    from medtwin_ml.export.bundle import load_bundle
    from training.config import SignalsSection
    from training.data import load_trajectories
    from training.train import export_bundle

    out = export_bundle("models:/toy-node@candidate", tmp_path / "b", toy_workspace)
    card, model = load_bundle(out)
    assert card.twin == "toy_dose" and card.version == trained.model_version
    assert [s.name for s in card.parameters] == ["k", "V", "yb"]
    assert card.parameters[0].unit == "1/min"
    assert card.integration.step == 5
    assert card.training["run_id"] == trained.run_id

    ds = open_dataset(toy_workspace.dataset("toy"))
    data = load_trajectories(
        ds, SignalsSection(controls=["dose_mg"], targets=["level_mg_l"]), step=5
    )
    session = ort.InferenceSession(model)
    (y,) = session.run(None, {"p": data.p, "u": data.u})
    assert y.shape == data.y.shape
    # A trained surrogate tracks the solver far better than the mean level does.
    err = np.sqrt(np.mean((y - data.y) ** 2))
    assert err < 0.5 * data.y.std()

    same = export_bundle(f"runs:/{trained.run_id}", tmp_path / "c", toy_workspace)
    assert (same / "model.onnx").read_bytes() == model


def test_unknown_model_uri_is_refused(toy_workspace, tmp_path):
    from training.train import export_bundle

    with pytest.raises(ValueError, match="expected runs:/RUN_ID"):
        export_bundle("s3://x", tmp_path / "x", toy_workspace)


def test_killed_training_resumes_from_last_checkpoint(toy_workspace, tmp_path):
    """SIGKILL a training process after its first checkpoint; the rerun resumes."""
    cfg = toy_train_config(max_epochs=150, patience=150, checkpoint_every_n_steps=1)
    cfg = cfg.model_copy(update={"name": "toy-resume"})
    cfg_path = tmp_path / "train.json"
    cfg_path.write_text(cfg.model_dump_json())
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path.cwd())!r})
        from tests.training.toy_dose_twin import register_toy
        register_toy()
        from medtwin_ml.cli import app
        app(["train", {str(cfg_path)!r}], standalone_mode=True)
        """
    )
    env = {**os.environ, "MEDTWIN_HOME": str(toy_workspace.root)}
    child = subprocess.Popen([sys.executable, "-c", script], env=env)
    deadline = time.monotonic() + 120
    last = None
    while time.monotonic() < deadline:
        found = [
            d / "ckpt" / "last.ckpt"
            for d in toy_workspace.checkpoints.glob("toy-resume-*")
        ]
        if found and found[0].is_file():
            last = found[0]
            break
        assert child.poll() is None, "training ended before its first checkpoint"
        time.sleep(0.05)
    assert last is not None, "no checkpoint appeared"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, "training ended before it was killed"
    state = json.loads((last.parent.parent / "state.json").read_text())
    assert state["status"] == "running"
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(resumed)" in result.stdout
    assert state["run_id"] in result.stdout
