"""A writer killed with SIGKILL leaves an incomplete dataset; resuming completes it.

Each test runs the generation in a child process that sends itself SIGKILL at a
chosen point of the writing (see ``kill_writer.py``), then resumes in this process
and compares every shard checksum with an uninterrupted run's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from medtwin_ml.datasets import generate_dataset, open_dataset
from medtwin_ml.errors import DatasetIncompleteError
from medtwin_ml.registry import register
from tests.datasets.conftest import BASE, N_SHARDS, make_config

ROOT = Path(__file__).resolve().parents[2]


def _kill_during_generation(workspace, point: str, n: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.datasets.kill_writer",
            str(workspace.root),
            json.dumps(BASE),
            point,
            str(n),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr


def _counting(spec):
    """``spec`` with a solver that counts the shards it is asked to solve."""
    solved = []

    def simulate_batch(cases):
        solved.append(len(cases))
        return spec.simulate_batch(cases)

    register(dataclasses.replace(spec, simulate_batch=simulate_batch), replace=True)
    return solved


def _debris(path: Path) -> list[str]:
    return sorted(p.name for p in path.rglob(".tmp-*"))


# point, call to kill at, shards recorded when killed, what the kill leaves behind
KILLS = [
    # Zarr arrays are written coords first, then 3 per shard: the 9th is the second
    # array of shard-00002, so that shard's temporary folder is half written.
    pytest.param("array", 9, 2, "half-written shard", id="mid-shard"),
    # shard-00001 is complete and renamed into place but never recorded.
    pytest.param("record", 2, 1, "unrecorded shard", id="before-record"),
    # every shard recorded, the complete manifest not yet written.
    pytest.param("finish", 1, N_SHARDS, "nothing", id="before-manifest"),
]


@pytest.mark.parametrize(("point", "n", "n_recorded", "left"), KILLS)
def test_killed_writer_leaves_incomplete_dataset_and_resume_completes_it(
    toy, workspace, reference, point, n, n_recorded, left
):
    _kill_during_generation(workspace, point, n)
    path = workspace.dataset(BASE["name"])

    # 1. What the killed writer left does not read as a dataset.
    with pytest.raises(DatasetIncompleteError, match="incomplete"):
        open_dataset(path)
    progress = json.loads((path / "progress.json").read_text())
    assert sorted(progress["shards"]) == sorted(reference["shards"])[:n_recorded]
    shards_on_disk = sorted(p.name for p in (path / "shards").iterdir())
    if left == "half-written shard":
        (tmp,) = [p for p in (path / "shards").iterdir() if p.name.startswith(".tmp-")]
        assert tmp.name.startswith(".tmp-shard-00002-")
        arrays = sorted(p.name for p in (tmp / "outputs.zarr").iterdir() if p.is_dir())
        assert arrays == ["field_mg_l", "level_mg_l"]  # rate_mg_l_per_min never came
    elif left == "unrecorded shard":
        assert "shard-00001" in shards_on_disk
        assert "shard-00001" not in progress["shards"]
    else:
        assert _debris(path) == []

    # 2. Resuming solves only the unrecorded shards and removes the debris.
    solved = _counting(toy)
    generate_dataset(make_config(), workspace, scheduler="sync")
    assert len(solved) == N_SHARDS - n_recorded
    assert _debris(path) == []

    # 3. ... and ends byte-identical to an uninterrupted run.
    dataset = open_dataset(path)
    assert {s["name"]: s["sha256"] for s in dataset.manifest["shards"]} == reference[
        "shards"
    ]
    assert dataset.sha256 == reference["dataset_sha256"]
    assert sorted(p.name for p in (path / "shards").iterdir()) == sorted(
        reference["shards"]
    )
