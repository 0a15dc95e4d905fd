"""``medtwin train``: fit, track, export and register a surrogate.

The steps, each a function below:

1. load the dataset and cut it into training tensors, split by patient;
2. fit the normalisation on the training split and build the model;
3. open (or reopen, when resuming) the MLflow run and log config and dataset;
4. fit with Lightning: checkpoints every few steps, early stopping on validation;
5. score the best checkpoint on the held-out patients, in the outputs' units;
6. export to ONNX, check parity with onnxruntime, write the bundle, register the
   model under its alias.

Running the same config again after an interruption resumes from the last
checkpoint, in the same MLflow run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medtwin_ml._io import write_json_atomic
from medtwin_ml.datasets.store import Dataset, open_dataset
from medtwin_ml.workspace import Workspace
from training.config import TrainConfig

__all__ = ["TrainOutcome", "resolve_dataset", "train"]

logger = logging.getLogger(__name__)

# Lightning's advice that does not apply here: the tensors are in memory, so loader
# workers would only add processes; small datasets have few batches by design; and a
# resumed run's checkpoint folder is meant to hold the checkpoints it resumes from.
_EXPECTED_WARNINGS = (
    ".*does not have many workers.*",
    ".*number of training batches.*",
    ".*Checkpoint directory .* exists and is not empty.*",
)


@dataclass
class TrainOutcome:
    run_id: str
    model_name: str
    model_version: str
    metrics: dict[str, float]
    parity: dict[str, float]
    resumed: bool
    bundle_artifact: str
    elapsed_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def resolve_dataset(name_or_path: str, workspace: Workspace) -> Dataset:
    path = Path(name_or_path)
    if not path.is_dir():
        path = workspace.dataset(name_or_path)
    return open_dataset(path)


def config_digest(config: TrainConfig) -> str:
    text = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _precision(config: TrainConfig) -> str:
    import torch

    if config.precision != "auto":
        return config.precision
    on_gpu = config.accelerator in ("auto", "gpu") and torch.cuda.is_available()
    if on_gpu and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


def train(
    config: TrainConfig,
    workspace: Workspace,
    *,
    fresh: bool = False,
    progress_bar: bool = True,
) -> TrainOutcome:
    """Fit, score, export and register; resume an interrupted run of the same config."""
    import time

    import lightning as L
    import torch

    from medtwin_ml.surrogates.neural_ode import Normalisation
    from training.data import TrajectoryDataModule, load_trajectories
    from training.module import SurrogateModule

    started = time.perf_counter()
    workspace.ensure()
    if config.threads:
        torch.set_num_threads(config.threads)

    # 1. Data, split by patient.
    ds = resolve_dataset(config.dataset, workspace)
    data = load_trajectories(ds, config.signals, config.model.step)
    _fill_param_units(data, ds.twin)
    L.seed_everything(config.seed, workers=True, verbose=False)
    dm = TrajectoryDataModule(data, config.split, config.seed, config.optim.batch_size)

    # 2. Normalisation from the training split only.
    tr = dm.train_idx
    norm = Normalisation.fit(
        torch.from_numpy(data.p[tr]),
        torch.from_numpy(data.u[tr]),
        torch.from_numpy(data.y[tr]),
    )
    targets = config.signals.targets
    model_config = {
        "n_params": data.p.shape[1],
        "n_controls": data.u.shape[2],
        "n_outputs": data.y.shape[2],
        **config.model.model_dump(),
    }
    module = SurrogateModule(
        model_config=model_config,
        norm=norm.as_dict(),
        target_weights=[config.signals.target_weights.get(t, 1.0) for t in targets],
        primary=targets.index(config.signals.primary or targets[0]),
        lr=config.optim.lr,
        weight_decay=config.optim.weight_decay,
        max_epochs=config.optim.max_epochs,
        curriculum=[tuple(c) for c in config.optim.horizon_curriculum],
        integrator=config.optim.integrator,
    )

    # 3. The run: new, or the interrupted one of this same config.
    run_dir = workspace.checkpoints / f"{config.name}-{config_digest(config)[:12]}"
    state_path = run_dir / "state.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    last = run_dir / "ckpt" / "last.ckpt"
    resume = not fresh and state.get("status") == "running" and last.is_file()
    if not resume:
        shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    run_id = state["run_id"] if resume else _new_run(config, workspace, ds, data, dm)
    write_json_atomic(state_path, {"status": "running", "run_id": run_id})
    logger.info("%s MLflow run %s", "resuming" if resume else "started", run_id)

    # 4. Fit.
    trainer = _trainer(config, workspace, run_id, run_dir / "ckpt", progress_bar)
    with warnings.catch_warnings():
        for message in _EXPECTED_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        trainer.fit(module, datamodule=dm, ckpt_path=str(last) if resume else None)
    best_path = trainer.checkpoint_callbacks[0].best_model_path or str(last)
    best = SurrogateModule.load_from_checkpoint(best_path, map_location="cpu")
    model = best.model.eval().cpu()

    # 5-6. Score, export, register.
    metrics = _score(model, data, dm.test_idx)
    outcome = _publish(config, workspace, run_id, model, data, dm, ds, metrics)
    write_json_atomic(state_path, {"status": "finished", "run_id": run_id})
    outcome.resumed = resume
    outcome.elapsed_s = time.perf_counter() - started
    return outcome


def _fill_param_units(data, twin: str) -> None:
    from medtwin_ml.registry import get_twin
    from medtwin_ml.twin import field_unit

    spec = get_twin(twin)
    data.param_units = [field_unit(spec.parameters, n) for n in data.param_names]


def _new_run(config: TrainConfig, workspace: Workspace, ds: Dataset, data, dm) -> str:
    import mlflow

    from training.tracking import client, ensure_experiment, log_dataset

    exp_id = ensure_experiment(workspace, config.tracking.experiment)
    run = client(workspace).create_run(
        exp_id,
        run_name=config.name,
        tags={"twin": ds.twin, "dataset": ds.path.name, "medtwin.kind": "train"},
    )
    run_id = run.info.run_id
    with mlflow.start_run(run_id=run_id):
        flat = _flatten(config.model_dump(mode="json"))
        flat.update(
            {
                "dataset_sha256": ds.sha256,
                "n_train_cases": len(dm.train_idx),
                "n_val_cases": len(dm.val_idx),
                "n_test_cases": len(dm.test_idx),
                "n_params": data.p.shape[1],
                "n_steps": data.u.shape[1],
            }
        )
        mlflow.log_params({k: str(v)[:500] for k, v in flat.items()})
        mlflow.log_dict(config.model_dump(mode="json"), "config.json")
    log_dataset(run_id, ds)
    return run_id


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _trainer(
    config: TrainConfig, workspace: Workspace, run_id: str, run_dir: Path, bar: bool
):
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import MLFlowLogger

    best = ModelCheckpoint(
        dirpath=run_dir, filename="best", monitor="val_loss", mode="min", save_top_k=1
    )
    last = ModelCheckpoint(
        dirpath=run_dir,
        save_top_k=0,
        save_last=True,
        every_n_train_steps=config.optim.checkpoint_every_n_steps,
    )
    mlf = MLFlowLogger(
        experiment_name=config.tracking.experiment,
        tracking_uri=workspace.tracking_uri,
        run_id=run_id,
        log_model=False,
    )
    max_time = None
    if config.optim.max_time_min:
        max_time = {"minutes": config.optim.max_time_min}
    precision = _precision(config)
    accelerator = "cpu" if config.accelerator == "cpu" else config.accelerator
    return L.Trainer(
        max_epochs=config.optim.max_epochs,
        max_time=max_time,
        accelerator=accelerator,
        devices=1,
        precision=precision,
        deterministic=True,
        gradient_clip_val=config.optim.grad_clip,
        callbacks=[
            best,
            last,
            EarlyStopping("val_loss", patience=config.optim.patience),
        ],
        logger=mlf,
        enable_progress_bar=bar,
        enable_model_summary=False,
        log_every_n_steps=1,
        num_sanity_val_steps=0,
        default_root_dir=str(run_dir),
    )


def score_trajectories(
    pred: np.ndarray, ref: np.ndarray, names: list[str], units: list[str]
) -> dict[str, float]:
    """RMSE, MAE, max error (and MARD where the reference is positive) per output."""
    from medtwin_ml.validation.metrics import mae, mard_pct, max_abs_error, rmse

    out: dict[str, float] = {}
    for k, name in enumerate(names):
        p, r = pred[..., k], ref[..., k]
        out[f"{name}.rmse"] = rmse(p, r)
        out[f"{name}.mae"] = mae(p, r)
        out[f"{name}.max_abs_error"] = max_abs_error(p, r)
        if np.all(r > 0):
            out[f"{name}.mard_pct"] = mard_pct(p, r)
    return out


def _predict(model, p: np.ndarray, u: np.ndarray, batch: int = 512) -> np.ndarray:
    import torch

    parts = []
    with torch.no_grad():
        for i in range(0, len(p), batch):
            parts.append(
                model(
                    torch.from_numpy(p[i : i + batch]),
                    torch.from_numpy(u[i : i + batch]),
                ).numpy()
            )
    return np.concatenate(parts)


def _score(model, data, idx: np.ndarray) -> dict[str, float]:
    pred = _predict(model, data.p[idx], data.u[idx])
    return score_trajectories(pred, data.y[idx], data.target_names, data.target_units)


def _figure(model, data, idx: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = idx[: min(4, len(idx))]
    pred = _predict(model, data.p[chosen], data.u[chosen])
    t = np.arange(data.y.shape[1]) * data.step
    fig, axes = plt.subplots(
        len(chosen), 1, figsize=(8, 2.2 * len(chosen)), sharex=True, squeeze=False
    )
    for ax, i, yp in zip(axes[:, 0], chosen, pred, strict=True):
        ax.plot(t, data.y[i, :, 0], color="black", lw=1.5, label="full solver")
        ax.plot(t, yp[:, 0], color="tab:red", lw=1.2, ls="--", label="surrogate")
        ax.set_ylabel(f"{data.target_names[0]}\n[{data.target_units[0]}]", fontsize=8)
        ax.set_title(f"held-out case {int(data.case_id[i])}", fontsize=9)
    axes[0, 0].legend(fontsize=8)
    axes[-1, 0].set_xlabel(f"{data.time_name} [{data.time_unit}]")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _domain(data, idx: np.ndarray, ds: Dataset) -> dict[str, Any]:
    p, u = data.p[idx], data.u[idx]
    return {
        "parameters": {
            n: [float(p[:, j].min()), float(p[:, j].max())]
            for j, n in enumerate(data.param_names)
        },
        "controls": {
            n: {
                "max_per_step": float(u[:, :, j].max()),
                "total_max": float(u[:, :, j].sum(1).max() * data.step),
            }
            for j, n in enumerate(data.control_names)
        },
        "horizon_steps": int(data.u.shape[1]),
        "design": ds.manifest.get("input_domain", {}),
        "cohort": ds.manifest.get("cohort"),
    }


def _publish(config, workspace, run_id, model, data, dm, ds, metrics) -> TrainOutcome:
    import mlflow
    import onnx

    from medtwin_ml.export.bundle import BundleCard, Integration, Signal, write_bundle
    from medtwin_ml.export.onnx_rollout import (
        export_rollout,
        export_step,
        rollout_parity,
        step_parity,
        visited_step_inputs,
    )
    from training.tracking import client

    c = client(workspace)
    with tempfile.TemporaryDirectory() as tmp_name, mlflow.start_run(run_id=run_id):
        tmp = Path(tmp_name)
        validity, uncertainty, coverage = _evidence(model, data, dm)
        metrics = {**metrics, **coverage}
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items()})
        fig = tmp / "validation.png"
        _figure(model, data, dm.test_idx, fig)
        mlflow.log_artifact(str(fig), "figures")

        rollout, step = (
            export_rollout(model, tmp / "model.onnx"),
            export_step(model, tmp / "step.onnx"),
        )
        held_out = dm.test_idx[:1000]
        traj = rollout_parity(model, rollout, data.p[held_out], data.u[held_out])
        parity = {
            "step_max_abs_error": step_parity(
                model,
                step,
                inputs=visited_step_inputs(model, data.p[held_out], data.u[held_out]),
            ),
            **{
                f"{n}.rollout_max_abs_error": float(v)
                for n, v in zip(data.target_names, traj, strict=True)
            },
        }
        mlflow.log_metrics({f"parity_{k}": v for k, v in parity.items()})

        info = mlflow.onnx.log_model(
            onnx.load(str(rollout)),
            name="model",
            signature=_signature(data),
            registered_model_name=config.tracking.registered_model,
            save_as_external_data=False,
        )
        version = str(info.registered_model_version)
        c.set_registered_model_alias(
            config.tracking.registered_model, config.tracking.alias, version
        )

        card = BundleCard(
            name=config.tracking.registered_model,
            version=version,
            twin=ds.twin,
            parameters=[
                Signal(name=n, unit=u)
                for n, u in zip(data.param_names, data.param_units, strict=True)
            ],
            controls=[
                Signal(name=n, unit=u)
                for n, u in zip(data.control_names, data.control_units, strict=True)
            ],
            outputs=[
                Signal(name=n, unit=u)
                for n, u in zip(data.target_names, data.target_units, strict=True)
            ],
            integration=Integration(
                step=data.step,
                data_step=data.data_step,
                time_name=data.time_name,
                time_unit=data.time_unit,
            ),
            input_domain=_domain(data, dm.train_idx, ds),
            validity=validity,
            uncertainty=uncertainty,
            validation={"held_out_patients": metrics, "n_test_cases": len(dm.test_idx)},
            parity=parity,
            training={
                "run_id": run_id,
                "tracking_uri": workspace.tracking_uri,
                "experiment": config.tracking.experiment,
                "dataset": ds.path.name,
                "dataset_sha256": ds.sha256,
                "config": config.model_dump(mode="json"),
            },
        )
        bundle = write_bundle(tmp / "bundle", rollout, card)
        mlflow.log_artifacts(str(bundle), "bundle")
    return TrainOutcome(
        run_id=run_id,
        model_name=config.tracking.registered_model,
        model_version=version,
        metrics=metrics,
        parity=parity,
        resumed=False,
        bundle_artifact=f"runs:/{run_id}/bundle",
    )


def _evidence(model, data, dm) -> tuple[dict, dict, dict[str, float]]:
    """The validity detector (fitted on the training cases), split-conformal
    intervals (calibrated on the validation patients) and their coverage on the
    held-out test patients."""
    from medtwin_ml.validation.domain import (
        ValidityDetector,
        case_features,
        feature_names,
    )
    from medtwin_ml.validation.uncertainty import coverage, fit_conformal, intervals

    tr, va, te = dm.train_idx, dm.val_idx, dm.test_idx
    detector = ValidityDetector.fit(
        case_features(data.p[tr], data.u[tr], data.step),
        feature_names(data.param_names, data.control_names),
    )
    n_needed = 9  # split conformal at 90 % needs n >= 0.9 / (1 - 0.9) cases
    if len(va) < n_needed:
        logger.warning(
            "%d validation cases: too few to calibrate 90 %% intervals (%d needed); "
            "the bundle carries none",
            len(va),
            n_needed,
        )
        return detector.to_dict(), {}, {}
    uncertainty = fit_conformal(
        _predict(model, data.p[va], data.u[va]), data.y[va], data.target_names, 0.9
    )
    lower, upper = intervals(
        uncertainty, _predict(model, data.p[te], data.u[te]), data.target_names
    )
    covered = coverage(lower, upper, data.y[te])
    return (
        detector.to_dict(),
        uncertainty,
        {
            f"{n}.coverage_90_pct": 100 * float(c)
            for n, c in zip(data.target_names, covered, strict=True)
        },
    )


def _signature(data):
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    f32 = np.dtype("float32")
    n_p, n_u, n_y = data.p.shape[1], data.u.shape[2], data.y.shape[2]
    return ModelSignature(
        inputs=Schema(
            [TensorSpec(f32, (-1, n_p), "p"), TensorSpec(f32, (-1, -1, n_u), "u")]
        ),
        outputs=Schema([TensorSpec(f32, (-1, -1, n_y), "y")]),
    )


def export_bundle(uri: str, out: str | os.PathLike[str], workspace: Workspace) -> Path:
    """Fetch the bundle of a run or registered model, verify it, write it to ``out``."""
    import mlflow

    from medtwin_ml.export.bundle import MODEL_FILE, load_bundle, write_bundle
    from training.tracking import client, resolve_run_id

    client(workspace)
    run_id = resolve_run_id(workspace, uri)
    with tempfile.TemporaryDirectory() as tmp:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="bundle", dst_path=tmp
        )
        card, _ = load_bundle(local)
        return write_bundle(out, Path(local) / MODEL_FILE, card)
