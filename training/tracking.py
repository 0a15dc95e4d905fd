"""MLflow helpers: the workspace's tracking store, experiments, dataset inputs."""

from __future__ import annotations

import logging
import warnings

from medtwin_ml.datasets.store import Dataset
from medtwin_ml.workspace import Workspace

__all__ = ["client", "ensure_experiment", "log_dataset", "resolve_run_id"]

logger = logging.getLogger(__name__)


def client(workspace: Workspace):
    """An MLflow client on the workspace's SQLite store, set as the default URI."""
    import mlflow
    from mlflow.tracking import MlflowClient

    workspace.ensure()
    mlflow.set_tracking_uri(workspace.tracking_uri)
    mlflow.set_registry_uri(workspace.tracking_uri)
    return MlflowClient(workspace.tracking_uri, workspace.tracking_uri)


def ensure_experiment(workspace: Workspace, name: str) -> str:
    """The experiment's id; created with its artifacts inside the workspace."""
    c = client(workspace)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return c.create_experiment(
        name, artifact_location=workspace.artifact_location(name)
    )


def log_dataset(run_id: str, ds: Dataset, context: str = "training") -> None:
    """Record the dataset as an MLflow dataset input of the run, by its checksum."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    with warnings.catch_warnings():
        # MLflow registers its local-file source under two names and warns that
        # the URI is ambiguous; both are the same class, so the choice is moot.
        warnings.filterwarnings("ignore", message=".*interpreted in multiple ways.*")
        source = resolve_dataset_source(ds.path.as_uri())
    dataset = MetaDataset(source=source, name=ds.path.name, digest=ds.sha256[:36])
    with mlflow.start_run(run_id=run_id):
        mlflow.log_input(dataset, context=context)


def resolve_run_id(workspace: Workspace, uri: str) -> str:
    """The run behind ``runs:/<id>``, ``models:/<name>@<alias>`` or
    ``models:/<name>/<version>``."""
    c = client(workspace)
    if uri.startswith("runs:/"):
        return uri[len("runs:/") :].split("/")[0]
    if uri.startswith("models:/"):
        rest = uri[len("models:/") :]
        if "@" in rest:
            name, alias = rest.split("@", 1)
            return c.get_model_version_by_alias(name, alias).run_id
        name, _, version = rest.partition("/")
        if not version:
            raise ValueError(
                f"{uri!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION"
            )
        return c.get_model_version(name, version).run_id
    raise ValueError(
        f"{uri!r}: expected runs:/RUN_ID, models:/NAME@ALIAS or models:/NAME/VERSION"
    )
