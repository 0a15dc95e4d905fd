from __future__ import annotations

import pytest

from medtwin_ml.datasets import DatasetConfig, generate_dataset
from medtwin_ml.workspace import Workspace
from tests.training.toy_dose_twin import register_toy


def toy_train_config(**optim):
    from training.config import TrainConfig

    return TrainConfig(
        name="toy-node",
        dataset="toy",
        seed=3,
        signals={"controls": ["dose_mg"], "targets": ["level_mg_l"]},
        model={"step": 5, "latent_dim": 4, "embed_dim": 4, "hidden": 16},
        optim={
            "max_epochs": 12,
            "batch_size": 8,
            "lr": 1e-2,
            "horizon_curriculum": [(0, 1.0)],
            "integrator": "step",
            **optim,
        },
        split={"val_fraction": 0.2, "test_fraction": 0.2},
        tracking={"experiment": "toy", "registered_model": "toy-node"},
        threads=1,
    )


@pytest.fixture(scope="session")
def toy_workspace(tmp_path_factory):
    """A workspace holding a small dataset of the toy dose twin."""
    register_toy()
    ws = Workspace.from_env(tmp_path_factory.mktemp("train") / "ws").ensure()
    cfg = DatasetConfig(
        name="toy",
        twin="toy_dose",
        cohort="default",
        n_patients=30,
        scenarios_per_patient=2,
        seed=1,
        shard_size=30,
        options={"duration_min": 120},
    )
    generate_dataset(cfg, ws, scheduler="sync")
    return ws
