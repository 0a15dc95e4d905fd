"""The workspace: where datasets, tracking, artifacts and bundles live.

One directory, ``MEDTWIN_HOME`` (default ``./.medtwin``), holds everything a local
installation writes::

    $MEDTWIN_HOME/
        datasets/      one folder per dataset (see :mod:`medtwin_ml.datasets`)
        mlflow.db      MLflow tracking and model registry (SQLite backend)
        artifacts/     MLflow artifacts, one folder per experiment
        bundles/       exported surrogate bundles that serving loads
        reports/       validation reports

This module is the only place that knows these paths.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ENV_VAR", "Workspace"]

ENV_VAR = "MEDTWIN_HOME"
_DEFAULT = ".medtwin"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class Workspace:
    """The paths of one workspace. Nothing is created until :meth:`ensure`."""

    root: Path

    @classmethod
    def from_env(cls, home: str | os.PathLike[str] | None = None) -> Workspace:
        """The workspace at ``home``, else ``$MEDTWIN_HOME``, else ``./.medtwin``."""
        chosen = home if home is not None else os.environ.get(ENV_VAR) or _DEFAULT
        return cls(Path(chosen).expanduser().resolve())

    def ensure(self) -> Workspace:
        for path in (self.datasets, self.artifacts, self.bundles, self.reports):
            path.mkdir(parents=True, exist_ok=True)
        return self

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def bundles(self) -> Path:
        return self.root / "bundles"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def mlflow_db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI of the workspace's SQLite store."""
        return f"sqlite:///{self.mlflow_db.as_posix()}"

    def artifact_location(self, experiment: str) -> str:
        """Artifact root for an MLflow experiment, inside the workspace."""
        return (self.artifacts / check_name(experiment, "experiment")).as_uri()

    def dataset(self, name: str) -> Path:
        return self.datasets / check_name(name, "dataset name")

    def bundle(self, name: str) -> Path:
        return self.bundles / check_name(name, "bundle name")


def check_name(name: str, what: str) -> str:
    """Refuse names that could escape the workspace or confuse a file system."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{what} {name!r} is not valid; expected 1-128 characters from "
            "letters, digits, '.', '_' and '-', starting with a letter or digit"
        )
    return name
