"""A real, tiny diabetes bundle: a small dataset, a few epochs, exported to ONNX."""

from __future__ import annotations

import pytest

DIABETES_PARAMETERS = [
    "BW", "Gb", "Ib", "kabs", "kmax", "kmin", "b", "d", "Vg", "Vi", "Vmx", "Km0",
    "k1", "k2", "p2u", "m1", "m2", "m4", "m30", "ki", "kp1", "kp2", "kp3", "f",
    "ke1", "ke2", "Fsnc", "Vm0", "kd", "ksc", "ka1", "ka2", "u2ss",
]  # fmt: skip


def build_diabetes_bundle(
    root, *, n_patients: int = 24, epochs: int = 4, step: float = 30, seed: int = 11
):
    """Generate a dataset, train, export; returns ``(workspace, bundle path)``."""
    from medtwin_ml.datasets import DatasetConfig, generate_dataset
    from medtwin_ml.workspace import Workspace
    from training.config import TrainConfig
    from training.train import export_bundle, train

    ws = Workspace.from_env(root / "ws").ensure()
    generate_dataset(
        DatasetConfig(
            name="diabetes-tiny",
            twin="diabetes",
            cohort="korean_adult",
            n_patients=n_patients,
            scenarios_per_patient=2,
            seed=seed,
            shard_size=64,
            options={"duration_min": 1440},
        ),
        ws,
        scheduler="sync",
    )
    cfg = TrainConfig(
        name="diabetes-tiny-node",
        dataset="diabetes-tiny",
        seed=5,
        signals={
            "controls": ["insulin_delivered_u", "carbs_eaten_g"],
            "targets": ["plasma_glucose_mg_dl", "plasma_insulin_pmol_l"],
            "primary": "plasma_glucose_mg_dl",
            "parameters": DIABETES_PARAMETERS,
        },
        model={"step": step, "latent_dim": 8, "embed_dim": 8, "hidden": 32},
        optim={"max_epochs": epochs, "batch_size": 16, "lr": 0.01},
        split={"val_fraction": 0.15, "test_fraction": 0.15},
        tracking={
            "experiment": "diabetes-tiny",
            "registered_model": "diabetes-tiny-node",
        },
        threads=1,
    )
    outcome = train(cfg, ws, progress_bar=False)
    bundle = export_bundle(f"runs:/{outcome.run_id}", root / "bundle", ws)
    return ws, bundle


@pytest.fixture(scope="session")
def diabetes_bundle(tmp_path_factory):
    """``(workspace, bundle)`` of a tiny trained diabetes surrogate."""
    return build_diabetes_bundle(tmp_path_factory.mktemp("validation"))
