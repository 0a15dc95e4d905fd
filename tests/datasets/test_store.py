"""The dataset store: layout, exact round trip, checksums, refusals."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from medtwin_ml._io import sha256_tree
from medtwin_ml.datasets import (
    DatasetWriter,
    dataset_checksum,
    generate_dataset,
    open_dataset,
    plan_shards,
)
from medtwin_ml.errors import (
    ConfigError,
    DatasetError,
    DatasetIncompleteError,
    DatasetIntegrityError,
)
from medtwin_ml.registry import register
from medtwin_ml.twin import BatchResult
from tests.datasets import toy_twin
from tests.datasets.conftest import make_config


@pytest.fixture()
def stored(toy, workspace):
    """The base dataset, generated in this process."""
    return generate_dataset(make_config(), workspace, scheduler="sync")


def _workspace_of(dataset_path):
    from medtwin_ml.workspace import Workspace

    return Workspace(dataset_path.parent.parent)


def test_plan_shards_covers_every_case_once():
    spans = plan_shards(10, 3)
    assert [(s.start, s.stop) for s in spans] == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert [s.name for s in spans][-1] == "shard-00003"
    assert plan_shards(6, 3)[-1].size == 3
    with pytest.raises(ValueError, match="shard_size = 0"):
        plan_shards(10, 0)


def test_round_trip_is_exact(stored):
    dataset = open_dataset(stored)
    assert dataset.n_cases == 10
    inputs = dataset.inputs

    # Case i pairs design row i with patient i // scenarios_per_patient.
    np.testing.assert_array_equal(inputs["case_id"], np.arange(10))
    np.testing.assert_array_equal(inputs["patient_id"], np.arange(10) // 2)
    design = toy_twin.DOMAIN.sample(10, seed=7, method="sobol")
    pd.testing.assert_frame_equal(inputs[["gain", "dose_mg"]], design)
    patients = toy_twin.TWIN.sample_cohort("adults", 5, 7)
    np.testing.assert_array_equal(
        inputs["param_k_per_min"], [patients[i // 2].k_per_min for i in range(10)]
    )
    assert "param_label" not in inputs  # strings stay in params_json only

    # Cases are rebuilt exactly from their JSON, and solving them again gives the
    # stored outputs bit for bit (float64 survives Zarr and JSON unchanged).
    cases = [dataset.case(i) for i in range(10)]
    assert cases[3].params == patients[1]
    assert cases[3].device.gain == design["gain"][3]
    again = toy_twin.TWIN.simulate_batch(cases)
    for name, expected in again.outputs.items():
        stored_array = dataset.output(name)
        assert stored_array.shape == expected.shape
        np.testing.assert_array_equal(stored_array, expected)
    assert set(dataset.outputs()) == {"level_mg_l", "rate_mg_l_per_min", "field_mg_l"}
    np.testing.assert_array_equal(dataset.coords["time_min"], np.arange(21.0))
    np.testing.assert_array_equal(
        dataset.summary["peak_mg_l"], again.summary["peak_mg_l"]
    )
    assert dataset.units["level_mg_l"] == "mg/L"
    assert dataset.units["time_min"] == "min"
    with pytest.raises(KeyError, match="no output 'glucose'"):
        dataset.output("glucose")
    with pytest.raises(IndexError, match="case 10 out of range"):
        dataset.case(10)


def test_each_case_is_one_zarr_chunk_in_one_file_per_array(stored):
    import zarr

    outputs = stored / "shards" / "shard-00000" / "outputs.zarr"
    group = zarr.open_group(outputs, mode="r")
    assert group["level_mg_l"].shape == (3, 21)
    assert group["level_mg_l"].chunks == (1, 21)  # a case is read on its own
    assert group["level_mg_l"].shards == (3, 21)  # ... from the shard's one file
    assert group["field_mg_l"].chunks == (1, 2, 3)
    files = sorted(
        p.relative_to(outputs).as_posix()
        for p in outputs.rglob("*")
        if p.is_file() and p.name != "zarr.json"
    )
    assert files == [
        "field_mg_l/c/0/0/0",
        "level_mg_l/c/0/0",
        "rate_mg_l_per_min/c/0/0",
    ]


def test_manifest_describes_the_dataset(stored):
    manifest = json.loads((stored / "manifest.json").read_text())
    assert manifest["complete"] is True
    assert manifest["twin"] == "toy_uptake"
    assert manifest["solver_version"] == "1.0"
    assert manifest["config"] == make_config().model_dump(mode="json")
    assert manifest["seed"] == 7
    assert manifest["cohort"] == "adults"
    assert (manifest["n_cases"], manifest["n_patients"]) == (10, 5)
    assert manifest["shard_size"] == 3
    assert manifest["input_domain"] == toy_twin.DOMAIN.model_dump(mode="json")
    outputs = {o["name"]: o for o in manifest["outputs"]}
    assert outputs["rate_mg_l_per_min"]["unit"] == "mg/L/min"
    assert outputs["field_mg_l"]["grid"] == [2, 3]
    assert manifest["coords"]["time_min"]["shape"] == [21]
    shards = manifest["shards"]
    assert [(s["start"], s["stop"]) for s in shards] == [
        (0, 3),
        (3, 6),
        (6, 9),
        (9, 10),
    ]
    for s in shards:
        assert s["sha256"] == sha256_tree(stored / "shards" / s["name"])
    assert manifest["dataset_sha256"] == dataset_checksum(
        shards, sha256_tree(stored / "coords.zarr")
    )


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(
    toy, tmp_path, reference
):
    from medtwin_ml.workspace import Workspace

    again = generate_dataset(make_config(), Workspace(tmp_path / "a"), scheduler="sync")
    manifest = open_dataset(again).manifest
    assert {s["name"]: s["sha256"] for s in manifest["shards"]} == reference["shards"]
    assert manifest["dataset_sha256"] == reference["dataset_sha256"]

    other = generate_dataset(
        make_config(seed=8), Workspace(tmp_path / "b"), scheduler="sync"
    )
    assert open_dataset(other).sha256 != reference["dataset_sha256"]


def test_corrupted_shard_is_detected_naming_the_shard_and_both_checksums(stored):
    recorded = open_dataset(stored).manifest["shards"][1]["sha256"]
    chunk = stored / "shards" / "shard-00001" / "outputs.zarr" / "level_mg_l" / "c"
    chunk = chunk / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the stored chunks
    chunk.write_bytes(bytes(data))
    found = sha256_tree(stored / "shards" / "shard-00001")
    assert found != recorded

    with pytest.raises(DatasetIntegrityError) as info:
        open_dataset(stored)
    message = str(info.value)
    assert "shard shard-00001" in message
    assert recorded in message and found in message
    # Without verification it opens (the caller asked not to check).
    assert open_dataset(stored, verify=False).n_cases == 10


def test_missing_shard_and_altered_manifest_are_detected(stored):
    manifest_path = stored / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["shards"][0]["sha256"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(DatasetIntegrityError, match="manifest was altered"):
        open_dataset(stored)

    import shutil

    manifest["shards"][0]["sha256"] = sha256_tree(stored / "shards" / "shard-00000")
    manifest_path.write_text(json.dumps(manifest))
    open_dataset(stored)
    shutil.rmtree(stored / "shards" / "shard-00002")
    with pytest.raises(DatasetIntegrityError, match=r"shard shard-00002 .* is missing"):
        open_dataset(stored)


def test_regeneration_repairs_a_corrupted_shard_and_keeps_the_others(stored, toy):
    before = open_dataset(stored).sha256
    chunk = stored / "shards" / "shard-00002" / "inputs.parquet"
    chunk.write_bytes(chunk.read_bytes()[:-10])
    solved = []

    def simulate_batch(cases):
        solved.append(len(cases))
        return toy.simulate_batch(cases)

    register(dataclasses.replace(toy, simulate_batch=simulate_batch), replace=True)
    generate_dataset(make_config(), _workspace_of(stored), scheduler="sync")
    assert solved == [3]  # shard-00002 only
    assert open_dataset(stored).sha256 == before

    solved.clear()
    generate_dataset(make_config(), _workspace_of(stored), scheduler="sync")
    assert solved == []  # a complete, verified dataset is left as it is

    # Without its progress record, and with damaged coordinates, the dataset is
    # resumed from its manifest: one shard is solved again to restore the grid.
    (stored / "progress.json").unlink()
    coords = stored / "coords.zarr" / "time_min" / "c" / "0"
    coords.write_bytes(coords.read_bytes()[::-1])
    with pytest.raises(DatasetIntegrityError, match="coordinates"):
        open_dataset(stored)
    generate_dataset(make_config(), _workspace_of(stored), scheduler="sync")
    assert solved == [3]
    assert open_dataset(stored).sha256 == before


def test_a_different_config_is_refused_naming_the_keys_unless_overwritten(stored, toy):
    before = open_dataset(stored).sha256
    changed = make_config(seed=8, shard_size=4)
    with pytest.raises(ConfigError) as info:
        generate_dataset(changed, _workspace_of(stored), scheduler="sync")
    message = str(info.value)
    assert "config.seed: got 8" in message
    assert "config.shard_size: got 4" in message
    assert "overwrite" in message
    assert open_dataset(stored).sha256 == before  # untouched

    # A new solver version may change every number: the stored shards are refused.
    register(dataclasses.replace(toy, solver_version="2.0"), replace=True)
    with pytest.raises(ConfigError, match=r"solver_version: got '2\.0'"):
        generate_dataset(make_config(), _workspace_of(stored), scheduler="sync")
    register(toy, replace=True)

    generate_dataset(changed, _workspace_of(stored), scheduler="sync", overwrite=True)
    dataset = open_dataset(stored)
    assert dataset.manifest["seed"] == 8
    assert len(dataset.manifest["shards"]) == 3
    assert dataset.sha256 != before


def test_incomplete_and_absent_datasets_are_told_apart(tmp_path, toy):
    with pytest.raises(DatasetError, match="no dataset at") as info:
        open_dataset(tmp_path / "nothing")
    assert not isinstance(info.value, DatasetIncompleteError)

    header = {"twin": "toy_uptake", "n_cases": 4, "shard_size": 2}
    with DatasetWriter(tmp_path / "d", header) as writer:
        assert [s.name for s in writer.pending()] == ["shard-00000", "shard-00001"]
        with pytest.raises(DatasetError, match="another writer"):
            DatasetWriter(tmp_path / "d", header)
        with pytest.raises(DatasetIncompleteError, match="0 of 2 shards"):
            open_dataset(tmp_path / "d")
        with pytest.raises(DatasetIncompleteError, match="2 shards missing"):
            writer.finish()


def test_writer_refuses_inconsistent_batches(tmp_path):
    header = {"twin": "toy_uptake", "n_cases": 4, "shard_size": 2}
    inputs = pd.DataFrame({"case_id": [0, 1]})
    t = np.arange(3.0)
    with DatasetWriter(tmp_path / "d", header) as writer:
        first, second = writer.pending()
        with pytest.raises(
            DatasetError, match=r"shape \(3, 3\); expected \(2, \*grid\)"
        ):
            writer.write_shard(
                first, inputs, BatchResult({"t": t}, {"y": np.ones((3, 3))})
            )
        writer.write_shard(first, inputs, BatchResult({"t": t}, {"y": np.ones((2, 3))}))
        with pytest.raises(DatasetError, match="differ from the other shards"):
            writer.write_shard(
                second, inputs, BatchResult({"t": t}, {"y": np.ones((2, 4))})
            )
        with pytest.raises(DatasetError, match="coordinates"):
            writer.write_shard(
                second, inputs, BatchResult({"t": t + 1}, {"y": np.ones((2, 3))})
            )
        assert [s.name for s in writer.pending()] == ["shard-00001"]
