"""The core (and the serving app) must not pull in torch, lightning or mlflow."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "lightning", "mlflow")


def _loaded_after(code: str) -> set[str]:
    probe = (
        f"{code}\nimport sys\n"
        "print(','.join(m for m in sys.modules if m.split('.')[0] in "
        f"{HEAVY!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return {m for m in out.stdout.strip().split(",") if m}


def test_import_medtwin_ml_does_not_import_torch():
    assert _loaded_after("import medtwin_ml") == set()


def test_loading_every_twin_does_not_import_torch():
    code = "import medtwin_ml\nfor t in medtwin_ml.twins(): t.describe()"
    assert _loaded_after(code) == set()
