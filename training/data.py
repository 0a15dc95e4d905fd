"""From a stored dataset to training tensors, split by patient."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from medtwin_ml.datasets.store import Dataset
from medtwin_ml.errors import ConfigError
from training.config import SignalsSection, SplitSection

__all__ = [
    "Trajectories",
    "TrajectoryDataModule",
    "load_trajectories",
    "split_by_patient",
]

logger = logging.getLogger(__name__)

PARAM_PREFIX = "param_"


@dataclass
class Trajectories:
    """Arrays for a controlled-ODE surrogate, on the surrogate's step grid.

    Attributes:
        p: ``(cases, n_params)`` case parameters, own units.
        u: ``(cases, n_steps, n_controls)`` mean of each control over each step.
        y: ``(cases, n_steps + 1, n_targets)`` targets at ``t_k = k * step``.
        patient_id: ``(cases,)``.
        case_id: ``(cases,)``.
        param_names, control_names, target_names: column names, in order.
        param_units, control_units, target_units: their units.
        time_name, time_unit, step: the time axis.
    """

    p: np.ndarray
    u: np.ndarray
    y: np.ndarray
    patient_id: np.ndarray
    case_id: np.ndarray
    param_names: list[str]
    control_names: list[str]
    target_names: list[str]
    param_units: list[str]
    control_units: list[str]
    target_units: list[str]
    time_name: str
    time_unit: str
    step: float
    data_step: float

    def subset(self, idx: np.ndarray) -> Trajectories:
        return Trajectories(
            **{
                **self.__dict__,
                "p": self.p[idx],
                "u": self.u[idx],
                "y": self.y[idx],
                "patient_id": self.patient_id[idx],
                "case_id": self.case_id[idx],
            }
        )


def _time_unit(name: str) -> str:
    for suffix, unit in (("_min", "min"), ("_s", "s"), ("_h", "h"), ("_ms", "ms")):
        if name.endswith(suffix):
            return unit
    return "1"


def load_trajectories(
    ds: Dataset, signals: SignalsSection, step: float, source: str = "config"
) -> Trajectories:
    """Controls averaged over each step, targets sampled at step ends.

    The dataset's time grid must be uniform and ``step`` a whole multiple of it.
    """
    if len(ds.coords) != 1:
        raise ConfigError(
            source,
            [("dataset", sorted(ds.coords), "a dataset with one time coordinate")],
        )
    ((time_name, t),) = ds.coords.items()
    t = np.asarray(t, dtype=float)
    dt = float(t[1] - t[0])
    if not np.allclose(np.diff(t), dt):
        raise ConfigError(source, [("dataset", time_name, "a uniform time grid")])
    ratio = step / dt
    if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
        raise ConfigError(
            source,
            [("model.step", step, f"a whole multiple of the dataset's grid, {dt:g}")],
        )
    ratio = round(ratio)
    n_steps = (len(t) - 1) // ratio

    known = ds.output_names
    for key, names in (
        ("signals.controls", signals.controls),
        ("signals.targets", signals.targets),
    ):
        missing = [n for n in names if n not in known]
        if missing:
            raise ConfigError(
                source, [(key, missing, f"dataset outputs, one of {known}")]
            )

    outputs = ds.outputs(signals.controls + signals.targets)
    u_fine = np.stack([outputs[n] for n in signals.controls], axis=-1)
    u = (
        u_fine[:, : n_steps * ratio]
        .reshape(len(u_fine), n_steps, ratio, -1)
        .mean(axis=2)
    )
    y = np.stack([outputs[n] for n in signals.targets], axis=-1)[:, ::ratio][
        :, : n_steps + 1
    ]

    inputs = ds.inputs
    param_cols = [c for c in inputs.columns if c.startswith(PARAM_PREFIX)]
    if signals.parameters == "auto":
        names = [
            c[len(PARAM_PREFIX) :]
            for c in param_cols
            if np.issubdtype(inputs[c].dtype, np.number) and inputs[c].std() > 0
        ]
    else:
        names = list(signals.parameters)
        missing = [n for n in names if PARAM_PREFIX + n not in inputs.columns]
        if missing:
            available = [c[len(PARAM_PREFIX) :] for c in param_cols]
            raise ConfigError(
                source, [("signals.parameters", missing, f"some of {available}")]
            )
    p = inputs[[PARAM_PREFIX + n for n in names]].to_numpy(dtype=np.float32)

    units = ds.units
    grid = f"{dt:g} {_time_unit(time_name)}"
    logger.info(
        "%d cases, %d steps of %g, %d parameters", len(p), n_steps, step, len(names)
    )
    return Trajectories(
        p=p,
        u=u.astype(np.float32),
        y=y.astype(np.float32),
        patient_id=inputs["patient_id"].to_numpy(),
        case_id=inputs["case_id"].to_numpy(),
        param_names=names,
        control_names=list(signals.controls),
        target_names=list(signals.targets),
        param_units=[_param_unit(ds, n) for n in names],
        control_units=[f"{units.get(n) or '1'} per {grid}" for n in signals.controls],
        target_units=[units.get(n) or "1" for n in signals.targets],
        time_name=time_name,
        time_unit=_time_unit(time_name),
        step=float(step),
        data_step=dt,
    )


def _param_unit(ds: Dataset, name: str) -> str:
    spec_units = ds.manifest.get("parameter_units", {})
    return spec_units.get(name, "see twin parameters schema")


def split_by_patient(
    patient_id: np.ndarray, split: SplitSection, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Case indices of train, validation and test; no patient is in two splits."""
    patients = np.unique(patient_id)
    if len(patients) < 3:
        raise ValueError(
            f"{len(patients)} patients; expected at least 3 to split by patient"
        )
    order = np.random.default_rng(seed).permutation(patients)
    n_test = max(1, round(split.test_fraction * len(patients)))
    n_val = max(1, round(split.val_fraction * len(patients)))
    test, val = set(order[:n_test]), set(order[n_test : n_test + n_val])
    where = np.arange(len(patient_id))
    in_test = np.isin(patient_id, list(test))
    in_val = np.isin(patient_id, list(val))
    return where[~in_test & ~in_val], where[in_val], where[in_test]


class TrajectoryDataModule(L.LightningDataModule):
    """Train, validation and test loaders over :class:`Trajectories`."""

    def __init__(
        self,
        data: Trajectories,
        split: SplitSection,
        seed: int,
        batch_size: int,
    ):
        super().__init__()
        self.data = data
        self.batch_size = batch_size
        self.seed = seed
        self.train_idx, self.val_idx, self.test_idx = split_by_patient(
            data.patient_id, split, seed
        )

    def _tensors(self, idx: np.ndarray) -> TensorDataset:
        d = self.data
        return TensorDataset(
            torch.from_numpy(d.p[idx]),
            torch.from_numpy(d.u[idx]),
            torch.from_numpy(d.y[idx]),
        )

    def train_dataloader(self) -> DataLoader:
        g = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            self._tensors(self.train_idx),
            batch_size=self.batch_size,
            shuffle=True,
            generator=g,
            drop_last=len(self.train_idx) > self.batch_size,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self._tensors(self.val_idx), batch_size=1024)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self._tensors(self.test_idx), batch_size=1024)
