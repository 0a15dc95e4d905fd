"""The main job, end to end at a tiny size: ``medtwin demo --size tiny``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_tiny_demo_runs_end_to_end(tmp_path):
    env = {**os.environ, "MEDTWIN_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "medtwin_ml.cli", "demo", "--size", "tiny"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for step in range(1, 7):
        assert f"{step}/6" in out
    assert "glucose MARD" in out and "time in range median" in out
    assert "mlflow ui --backend-store-uri sqlite:///" in out

    home = tmp_path / "home"
    report = home / "reports" / "demo-tiny-diabetes-node"
    assert (report / "report.html").is_file()
    summary = json.loads((report / "report.json").read_text())
    assert summary["criteria"], "the report judged no acceptance criterion"
    bundle = home / "bundles" / "demo-tiny-diabetes-node" / "demo-tiny-diabetes-node"
    assert {"model.onnx", "card.json", "SHA256SUMS"} <= {
        p.name for p in bundle.iterdir()
    }


def test_demo_refuses_a_twin_without_a_surrogate_path():
    from typer.testing import CliRunner

    from medtwin_ml.cli import app

    result = CliRunner().invoke(app, ["demo", "--twin", "emc"])
    assert result.exit_code == 2
    assert "diabetes" in result.output
