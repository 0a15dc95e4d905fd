"""JSON Schema of every boundary model, written to ``data_schemas/``.

The files are generated (``medtwin schemas``), checked in, and kept in sync by a test:
they are the public contract of every input and output.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel

from medtwin_ml.registry import twins

__all__ = ["check_schemas", "core_models", "render_schema", "write_schemas"]

# Boundary models of the core that are not part of a twin: "file stem" -> "module:attr".
_CORE_MODELS: dict[str, str] = {
    "config.dataset": "medtwin_ml.datasets.config:DatasetConfig",
    "config.context_of_use": "medtwin_ml.validation.context:ContextOfUse",
}


def core_models() -> dict[str, type[BaseModel]]:
    """Every boundary model of the core: twins' inputs plus configuration files."""
    models: dict[str, type[BaseModel]] = {}
    for spec in twins():
        models[f"{spec.name}.parameters"] = spec.parameters
        models[f"{spec.name}.device"] = spec.device
        models[f"{spec.name}.scenario"] = spec.scenario
    for stem, target in _CORE_MODELS.items():
        module_name, _, attr = target.partition(":")
        models[stem] = getattr(importlib.import_module(module_name), attr)
    return models


def render_schema(model: type[BaseModel]) -> str:
    """The schema text of ``model``, stable from run to run."""
    schema = model.model_json_schema(mode="validation")
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_schemas(models: Mapping[str, type[BaseModel]], out: Path) -> list[Path]:
    """Write one ``<stem>.schema.json`` per model; remove schemas of models now gone."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, model in sorted(models.items()):
        path = out / f"{stem}.schema.json"
        path.write_text(render_schema(model), encoding="utf-8")
        written.append(path)
    keep = {p.name for p in written}
    for stale in out.glob("*.schema.json"):
        if stale.name not in keep:
            stale.unlink()
    return written


def check_schemas(models: Mapping[str, type[BaseModel]], out: Path) -> list[str]:
    """Differences between the models and the files in ``out``; empty when in sync."""
    problems = []
    expected = {f"{stem}.schema.json": model for stem, model in models.items()}
    for name, model in sorted(expected.items()):
        path = out / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != render_schema(model):
            problems.append(f"{path}: differs from {model.__module__}.{model.__name__}")
    for path in sorted(out.glob("*.schema.json")):
        if path.name not in expected:
            problems.append(f"{path}: no model produces it any more")
    return problems
