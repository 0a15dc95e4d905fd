from __future__ import annotations

import numpy as np
import pytest

from medtwin_ml.datasets import open_dataset
from medtwin_ml.errors import ConfigError
from training.config import SignalsSection, SplitSection
from training.data import load_trajectories, split_by_patient


def test_split_is_by_patient_and_seeded():
    patient = np.repeat(np.arange(20), 3)
    split = SplitSection(val_fraction=0.2, test_fraction=0.2)
    train, val, test = split_by_patient(patient, split, seed=5)
    sets = [set(patient[i]) for i in (train, val, test)]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert sorted(np.concatenate([train, val, test])) == list(range(60))
    assert len(sets[2]) == 4
    again = split_by_patient(patient, split, seed=5)
    assert all(
        np.array_equal(a, b) for a, b in zip(again, (train, val, test), strict=True)
    )


def test_controls_are_step_means_and_targets_step_samples(toy_workspace):
    ds = open_dataset(toy_workspace.dataset("toy"))
    signals = SignalsSection(controls=["dose_mg"], targets=["level_mg_l"])
    data = load_trajectories(ds, signals, step=5)
    dose, level = ds.output("dose_mg"), ds.output("level_mg_l")
    assert data.u.shape == (60, 24, 1) and data.y.shape == (60, 25, 1)
    np.testing.assert_allclose(data.u[:, 3, 0], dose[:, 15:20].mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(data.y[:, 4, 0], level[:, 20], rtol=1e-6)
    # Total dose is kept by averaging: sum of step means times the step.
    np.testing.assert_allclose(
        data.u.sum(axis=(1, 2)) * 5, dose[:, :120].sum(1), rtol=1e-5
    )
    assert data.param_names == ["k", "V", "yb"]
    assert data.control_units == ["mg per 1 min"]


def test_step_not_a_multiple_of_the_grid_is_refused(toy_workspace):
    ds = open_dataset(toy_workspace.dataset("toy"))
    signals = SignalsSection(controls=["dose_mg"], targets=["level_mg_l"])
    with pytest.raises(ConfigError, match=r"model\.step: got 2\.5"):
        load_trajectories(ds, signals, step=2.5)
    with pytest.raises(ConfigError, match=r"signals\.targets"):
        load_trajectories(
            ds, SignalsSection(controls=["dose_mg"], targets=["nope"]), step=5
        )
