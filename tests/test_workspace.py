from __future__ import annotations

import pytest

from medtwin_ml.workspace import Workspace


def test_workspace_paths_follow_medtwin_home(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDTWIN_HOME", str(tmp_path / "w"))
    ws = Workspace.from_env().ensure()
    assert ws.root == (tmp_path / "w").resolve()
    for sub in ("datasets", "artifacts", "bundles", "reports"):
        assert (ws.root / sub).is_dir()
    assert ws.tracking_uri == f"sqlite:///{(tmp_path / 'w' / 'mlflow.db').as_posix()}"
    assert ws.artifact_location("diabetes").startswith("file://")


def test_default_workspace_is_dot_medtwin(tmp_path, monkeypatch):
    monkeypatch.delenv("MEDTWIN_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert Workspace.from_env().root == (tmp_path / ".medtwin").resolve()


@pytest.mark.parametrize("name", ["../escape", "", "a/b", ".hidden"])
def test_names_that_escape_are_refused(workspace, name):
    with pytest.raises(ValueError, match="not valid"):
        workspace.dataset(name)
