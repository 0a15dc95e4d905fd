from __future__ import annotations

import pytest


@pytest.fixture()
def workspace(tmp_path, monkeypatch):
    """A fresh MEDTWIN_HOME for one test."""
    from medtwin_ml.workspace import Workspace

    home = tmp_path / "home"
    monkeypatch.setenv("MEDTWIN_HOME", str(home))
    return Workspace.from_env().ensure()
