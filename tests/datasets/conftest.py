from __future__ import annotations

import pytest

from medtwin_ml.datasets import DatasetConfig, generate_dataset, open_dataset
from medtwin_ml.workspace import Workspace
from tests.datasets import toy_twin

# 5 patients x 2 scenarios = 10 cases in shards of 3: three full shards and a short
# last one, so both the common and the ragged shard are exercised.
BASE = {
    "name": "toy",
    "twin": toy_twin.NAME,
    "cohort": "adults",
    "n_patients": 5,
    "scenarios_per_patient": 2,
    "seed": 7,
    "shard_size": 3,
    "options": {"duration_min": 20},
}
N_SHARDS = 4


def make_config(**changes) -> DatasetConfig:
    return DatasetConfig.model_validate({**BASE, **changes})


@pytest.fixture()
def toy(monkeypatch):
    """The toy twin, registered for one test only."""
    import medtwin_ml.registry as reg

    monkeypatch.setattr(reg, "_loaded", dict(reg._loaded))
    return toy_twin.register_toy()


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    """Checksums of an uninterrupted, in-process run of the base config."""
    import medtwin_ml.registry as reg

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(reg, "_loaded", dict(reg._loaded))
        toy_twin.register_toy()
        workspace = Workspace(tmp_path_factory.mktemp("reference")).ensure()
        path = generate_dataset(make_config(), workspace, scheduler="sync")
        manifest = open_dataset(path).manifest
    return {
        "shards": {s["name"]: s["sha256"] for s in manifest["shards"]},
        "dataset_sha256": manifest["dataset_sha256"],
    }
