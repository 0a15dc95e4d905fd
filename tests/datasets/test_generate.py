"""``generate_dataset`` and ``medtwin generate``: drawing, checks, Dask, the CLI."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from medtwin_ml.cli import app
from medtwin_ml.datasets import generate_dataset, open_dataset, sampled_domain
from medtwin_ml.errors import ConfigError, SimulationError
from medtwin_ml.registry import register
from tests.datasets import toy_twin
from tests.datasets.conftest import BASE, make_config


def test_narrowed_domain_is_sampled_and_recorded(toy, workspace):
    path = generate_dataset(
        make_config(domain={"dose_mg": (2.0, 3.0)}), workspace, scheduler="sync"
    )
    dataset = open_dataset(path)
    dose = dataset.inputs["dose_mg"].to_numpy()
    assert dose.min() >= 2.0 and dose.max() <= 3.0
    gain = dataset.inputs["gain"].to_numpy()
    assert gain.min() >= 0.5 and gain.max() <= 2.0 and gain.max() > 1.5
    recorded = {v["name"]: v for v in dataset.manifest["input_domain"]["variables"]}
    assert (recorded["dose_mg"]["low"], recorded["dose_mg"]["high"]) == (2.0, 3.0)
    assert (recorded["gain"]["low"], recorded["gain"]["high"]) == (0.5, 2.0)


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        ({"dose_mg": (0.0, 20.0)}, "expected bounds inside the twin's [0, 10] mg"),
        ({"dose_mg": (3.0, 2.0)}, "expected bounds [low, high] with low <= high"),
        ({"weight_kg": (1.0, 2.0)}, "expected one of the twin's variables"),
    ],
)
def test_domain_bounds_that_leave_the_twin_domain_are_refused(bounds, expected):
    with pytest.raises(ConfigError) as info:
        sampled_domain(toy_twin.DOMAIN, bounds, source="cfg.yaml")
    message = str(info.value)
    assert "cfg.yaml" in message
    assert f"domain.{next(iter(bounds))}" in message
    assert expected in message


def test_config_that_does_not_fit_the_twin_is_refused(toy, workspace):
    with pytest.raises(ConfigError, match="cohort: got 'elderly'; expected one of"):
        generate_dataset(make_config(cohort="elderly"), workspace, scheduler="sync")
    register(dataclasses.replace(toy, simulate_batch=None), replace=True)
    with pytest.raises(ConfigError, match="a twin with simulate_batch"):
        generate_dataset(make_config(), workspace, scheduler="sync")
    with pytest.raises(ValueError, match="n_workers = 0"):
        generate_dataset(make_config(), workspace, n_workers=0)


def test_solver_failure_names_the_shard(toy, workspace):
    def failing(cases):
        if any(c.scenario.dose_mg > 9.0 for c in cases):
            raise FloatingPointError("overflow in the toy solver")
        return toy.simulate_batch(cases)

    register(dataclasses.replace(toy, simulate_batch=failing), replace=True)
    doses = toy_twin.DOMAIN.sample(10, seed=7)["dose_mg"].to_numpy()
    first_bad = int(np.argmax(doses > 9.0)) // 3
    with pytest.raises(SimulationError) as info:
        generate_dataset(make_config(), workspace, scheduler="sync")
    message = str(info.value)
    assert f"shard-{first_bad:05d}" in message
    assert "FloatingPointError: overflow in the toy solver" in message


def test_dask_local_cluster_gives_the_same_bytes(toy, workspace, reference):
    seen = []
    start = time.perf_counter()
    path = generate_dataset(
        make_config(),
        workspace,
        n_workers=2,
        progress=lambda done, total: seen.append((done, total)),
    )
    elapsed = time.perf_counter() - start
    manifest = open_dataset(path).manifest
    assert {s["name"]: s["sha256"] for s in manifest["shards"]} == reference["shards"]
    assert manifest["dataset_sha256"] == reference["dataset_sha256"]
    assert seen[0] == (0, 10) and seen[-1] == (10, 10)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    # Not a speed test: a guard against a cluster that hangs until a timeout.
    assert elapsed < 90


runner = CliRunner()


def test_cli_generate_prints_path_cases_and_checksum(
    toy, workspace, tmp_path, reference
):
    config = tmp_path / "toy.yaml"
    config.write_text(yaml.safe_dump(BASE))
    result = runner.invoke(app, ["generate", str(config), "--scheduler", "sync"])
    assert result.exit_code == 0, result.output
    assert str(workspace.dataset("toy")) in result.output
    assert "n_cases 10" in result.output
    assert f"dataset_sha256 {reference['dataset_sha256']}" in result.output

    config.write_text(yaml.safe_dump({**BASE, "seed": 9}))
    result = runner.invoke(app, ["generate", str(config), "--scheduler", "sync"])
    assert result.exit_code == 2
    assert "config.seed: got 9" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(
        app, ["generate", str(config), "--scheduler", "sync", "--overwrite"]
    )
    assert result.exit_code == 0, result.output


def test_cli_generate_reports_a_bad_config_without_traceback(toy, workspace, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({**BASE, "n_patients": 0, "colour": "red"}))
    result = runner.invoke(app, ["generate", str(config)])
    assert result.exit_code == 2
    assert str(config) in result.output
    assert "n_patients: got 0" in result.output
    assert "colour" in result.output
    assert "Traceback" not in result.output
