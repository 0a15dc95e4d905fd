"""data_schemas/ is generated from the boundary models and must not drift."""

from __future__ import annotations

import json
import shutil

from pydantic import BaseModel

from medtwin_ml.cli import DATA_SCHEMAS, all_boundary_models
from medtwin_ml.schemas import check_schemas, write_schemas


def test_checked_in_schemas_match_the_models():
    problems = check_schemas(all_boundary_models(), DATA_SCHEMAS)
    assert problems == [], "run `medtwin schemas` and commit data_schemas/"


def test_drift_is_detected(tmp_path):
    out = tmp_path / "schemas"
    shutil.copytree(DATA_SCHEMAS, out)
    models = all_boundary_models()

    class Extra(BaseModel):
        x_m: float

    drifted = dict(models, extra_model=Extra)
    assert any("missing" in p for p in check_schemas(drifted, out))

    victim = sorted(out.glob("*.schema.json"))[0]
    schema = json.loads(victim.read_text())
    schema["title"] = "edited by hand"
    victim.write_text(json.dumps(schema))
    assert any(victim.name in p and "differs" in p for p in check_schemas(models, out))

    (out / "gone.schema.json").write_text("{}")
    assert any("no model produces it" in p for p in check_schemas(models, out))


def test_write_then_check_is_clean(tmp_path):
    models = all_boundary_models()
    write_schemas(models, tmp_path)
    assert check_schemas(models, tmp_path) == []
