"""``medtwin demo``: the whole platform on its embedded defaults, end to end.

Generate a diabetes dataset (Korean adults x pump settings x meals), train a
neural-ODE surrogate tracked in MLflow, export and verify its bundle, start the
what-if API and ask it a question over HTTP, validate the surrogate against the full
solver, and sum up. Every figure reported is measured in the run.

The API runs as its own process (``medtwin serve``), as a device team would run it,
and is asked over real HTTP on the loopback interface.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from medtwin_ml.errors import MedtwinError
from medtwin_ml.workspace import Workspace

__all__ = ["SIZES", "DemoResult", "run_demo"]

Report = Callable[[str], None]


class DemoError(MedtwinError):
    """A step of the demo could not run."""


@dataclass(frozen=True)
class DemoSize:
    n_patients: int
    days_per_patient: int
    max_epochs: int
    max_time_min: float
    curriculum: tuple[tuple[int, float], ...]
    cohort_n: int
    validation_cases: int
    corners: int
    calibration: int


SIZES: dict[str, DemoSize] = {
    # A few minutes of training: the surrogate a newcomer should see.
    "default": DemoSize(
        n_patients=200,
        days_per_patient=10,
        # Sized to end by itself inside the time limit on 2 cores, so that the
        # learning rate finishes its cosine decay.
        max_epochs=90,
        max_time_min=7.0,
        curriculum=((0, 0.25), (9, 0.5), (18, 1.0)),
        cohort_n=1000,
        validation_cases=100,
        corners=16,
        calibration=200,
    ),
    # The same path at a size that runs in about a minute, for CI.
    "tiny": DemoSize(8, 2, 2, 1.0, ((0, 1.0),), 50, 12, 4, 24),
}


@dataclass
class DemoResult:
    dataset: Path
    run_id: str
    model_uri: str
    bundle: Path
    report: Path
    test_metrics: dict[str, float]
    what_if: dict[str, Any]
    timings_s: dict[str, float] = field(default_factory=dict)
    validation_passed: bool = False


def _configs(size: DemoSize, name: str):
    from medtwin_ml.datasets import DatasetConfig
    from training.config import TrainConfig

    dataset = DatasetConfig(
        name=f"{name}-data",
        twin="diabetes",
        cohort="korean_adult",
        n_patients=size.n_patients,
        scenarios_per_patient=size.days_per_patient,
        seed=20261203,
        shard_size=100,
        options={"duration_min": 1440},
    )
    train = TrainConfig(
        name=name,
        dataset=dataset.name,
        seed=7,
        signals={
            "controls": ["insulin_delivered_u", "carbs_eaten_g"],
            "targets": [
                "plasma_glucose_mg_dl",
                "subcutaneous_glucose_mg_dl",
                "plasma_insulin_pmol_l",
            ],
            "primary": "plasma_glucose_mg_dl",
            "target_weights": {"plasma_glucose_mg_dl": 2.0},
            "parameters": DIABETES_PARAMETERS,
        },
        model={
            "step": 10,
            "latent_dim": 16,
            "embed_dim": 16,
            "hidden": 128,
            "depth": 1,
            "scheme": "midpoint",
        },
        optim={
            "batch_size": 128,
            "max_epochs": size.max_epochs,
            "patience": 40,
            "horizon_curriculum": list(size.curriculum),
            "integrator": "step",
            "checkpoint_every_n_steps": 50,
            "max_time_min": size.max_time_min,
        },
        split={"val_fraction": 0.1, "test_fraction": 0.1},
        tracking={"experiment": "demo", "registered_model": name},
    )
    return dataset, train


# The parameters the UVA/Padova equations read (configs/models/diabetes_node.yaml).
DIABETES_PARAMETERS = [
    "BW", "Gb", "Ib", "kabs", "kmax", "kmin", "b", "d", "Vg", "Vi", "Vmx", "Km0",
    "k1", "k2", "p2u", "m1", "m2", "m4", "m30", "ki", "kp1", "kp2", "kp3", "f",
    "ke1", "ke2", "Fsnc", "Vm0", "kd", "ksc", "ka1", "ka2", "u2ss",
]  # fmt: skip


def run_demo(
    workspace: Workspace,
    *,
    size: Literal["default", "tiny"] = "default",
    report: Report = lambda _: None,
    port: int | None = None,
) -> DemoResult:
    """Run the whole path; ``report`` receives one line per step."""
    from medtwin_ml.datasets import generate_dataset
    from training.train import export_bundle, train

    chosen = SIZES[size]
    name = "demo-diabetes-node" if size == "default" else f"demo-{size}-diabetes-node"
    data_cfg, train_cfg = _configs(chosen, name)
    workspace.ensure()
    timings: dict[str, float] = {}

    # 1. Dataset.
    report(
        f"1/6 generating {data_cfg.n_cases} patient-days: {data_cfg.n_patients} Korean "
        f"adults x {data_cfg.scenarios_per_patient} days of pump settings and meals"
    )
    t = time.perf_counter()
    dataset = generate_dataset(
        data_cfg, workspace, scheduler="sync" if size == "tiny" else None
    )
    timings["generate"] = time.perf_counter() - t

    # 2. Training, tracked in MLflow.
    report(
        f"2/6 training the neural-ODE surrogate (at most {chosen.max_time_min:g} min), "
        f"tracked in MLflow at {workspace.tracking_uri}"
    )
    t = time.perf_counter()
    outcome = train(train_cfg, workspace, fresh=True, progress_bar=False)
    timings["train"] = time.perf_counter() - t

    # 3. Export and verify the bundle.
    model_uri = f"models:/{name}@{train_cfg.tracking.alias}"
    report(f"3/6 exporting {model_uri} and verifying its checksums and parity")
    t = time.perf_counter()
    bundles = workspace.bundles / name
    shutil.rmtree(bundles, ignore_errors=True)
    bundle = export_bundle(model_uri, bundles / name, workspace)
    timings["export"] = time.perf_counter() - t

    # 4-5. Serve and ask.
    key = secrets.token_urlsafe(24)
    port = port or _free_port()
    report(f"4/6 starting the what-if API on http://127.0.0.1:{port}")
    t = time.perf_counter()
    with _server(bundles, port, key) as base:
        timings["serve_start"] = time.perf_counter() - t
        report(
            f"5/6 asking over HTTP: {chosen.cohort_n} Korean adults, basal as "
            "prescribed and at +20 %"
        )
        what_if = _ask(base, key, name, chosen.cohort_n)
    batched, reference = _full_solver_time(chosen.cohort_n, what_if["design"])
    what_if["full_solver_s"] = batched
    what_if["speedup"] = batched / what_if["latency_s"]
    what_if["reference_solver_s"] = reference
    what_if["reference_speedup"] = reference / what_if["latency_s"]

    # 6. Validation against the full solver.
    report("6/6 validating the surrogate against the full solver")
    from medtwin_ml.validation.validate import validate_bundle

    t = time.perf_counter()
    validation = validate_bundle(
        bundle,
        workspace.reports / name,
        n_cases=chosen.validation_cases,
        n_corners=chosen.corners,
        n_calibration=chosen.calibration,
        workspace=workspace,
    )
    timings["validate"] = time.perf_counter() - t
    return DemoResult(
        dataset=dataset,
        run_id=outcome.run_id,
        model_uri=model_uri,
        bundle=bundle,
        report=validation.html,
        test_metrics=outcome.metrics,
        what_if=what_if,
        timings_s=timings,
        validation_passed=validation.passed,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _server:
    """``medtwin serve`` in a child process, stopped on exit."""

    def __init__(self, bundles: Path, port: int, key: str):
        self.bundles, self.port, self.key = bundles, port, key

    def __enter__(self) -> str:
        env = {**os.environ, "MEDTWIN_API_KEYS": self.key}
        command = [
            # -P: the current folder must not shadow the installed packages.
            sys.executable, "-P", "-m", "medtwin_ml.cli", "serve",
            "--bundles", str(self.bundles), "--port", str(self.port),
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace")[-2000:]
                raise DemoError(f"the API exited at start-up:\n{err}")
            try:
                with urllib.request.urlopen(f"{base}/ready", timeout=1) as r:
                    if r.status == 200:
                        return base
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        self.__exit__()
        raise DemoError("the API did not become ready within 60 s")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _post(base: str, key: str, path: str, body: dict) -> tuple[dict, float]:
    req = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as r:
        answer = json.loads(r.read())
    return answer, time.perf_counter() - t


DESIGN = {
    "bolus_scale": 1.0,
    "breakfast_carbs_g": 50.0,
    "lunch_carbs_g": 70.0,
    "dinner_carbs_g": 70.0,
    "breakfast_time_min": 450.0,
    "lunch_time_min": 750.0,
    "dinner_time_min": 1110.0,
}


def _ask(base: str, key: str, name: str, n: int) -> dict[str, Any]:
    path = f"/v1/models/{name}/predict"
    answers, latencies = {}, {}
    for label, basal in (("prescribed", 1.0), ("basal_plus_20pct", 1.2)):
        body = {
            "cohort": {"name": "korean_adult", "n": n, "seed": 11},
            "design": {**DESIGN, "basal_scale": basal},
            "options": {"duration_min": 1440},
        }
        _post(base, key, path, body)  # the first call warms the model
        answer, latency = _post(base, key, path, body)
        answers[label], latencies[label] = answer["cohort"], latency
    return {
        "n": n,
        "design": {**DESIGN, "basal_scale": 1.2},
        "answers": answers,
        "latency_s": latencies["basal_plus_20pct"],
    }


def _full_solver_time(
    n: int, design: dict[str, float], n_reference: int = 3
) -> tuple[float, float]:
    """Seconds the full solver takes for the same cohort question: the batched path
    on all ``n`` patients, and the reference path (adaptive, one patient at a time)
    timed on ``n_reference`` of them and scaled to ``n``."""
    import pandas as pd

    from medtwin_ml.registry import get_twin

    twin = get_twin("diabetes")
    patients = twin.sample_cohort("korean_adult", n, 11)
    cases = twin.cases_from_design(
        pd.DataFrame([design] * n), patients, {"duration_min": 1440}
    )
    t = time.perf_counter()
    twin.simulate_batch(cases)
    batched = time.perf_counter() - t
    t = time.perf_counter()
    for case in cases[:n_reference]:
        twin.simulate(case)
    reference = (time.perf_counter() - t) / n_reference * n
    return batched, reference
