"""Typed configuration: every input that crosses a boundary is a pydantic model.

Files are YAML (``.yaml``, ``.yml``) or JSON (``.json``). Whatever goes wrong, from a
syntax error to a value out of range, comes back as one :class:`ConfigError` that names
the file, the key, the value and what was expected.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from medtwin_ml.errors import ConfigError

__all__ = ["BoundaryModel", "load_config", "read_mapping", "validate_input"]

M = TypeVar("M", bound=BaseModel)


class BoundaryModel(BaseModel):
    """Base of every boundary model: unknown keys and non-finite numbers are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


def read_mapping(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a YAML or JSON file whose top level is a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), [("(file)", str(path), "an existing file")])
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    try:
        if suffix == ".json":
            data = json.loads(text, parse_constant=_refuse_constant)
        elif suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            raise ConfigError(
                str(path), [("(file)", path.suffix, "a .json, .yaml or .yml file")]
            )
    except (json.JSONDecodeError, yaml.YAMLError, _NonFinite) as exc:
        raise ConfigError(
            str(path), [("(syntax)", str(exc), "valid JSON or YAML")]
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            str(path), [("(top level)", type(data).__name__, "a mapping of keys")]
        )
    return data


def load_config(path: str | os.PathLike[str], model: type[M]) -> M:
    """Read ``path`` and validate it as ``model``."""
    return validate_input(read_mapping(path), model, source=str(path))


def validate_input(data: Any, model: type[M], source: str = "input") -> M:
    """Validate already-parsed data as ``model``; errors name ``source`` and keys."""
    if _has_non_finite(data):
        key, value = _first_non_finite(data) or ("(value)", data)
        raise ConfigError(source, [(key, value, "a finite number")])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, problems_from(exc)) from None


def problems_from(exc: ValidationError) -> list[tuple[str, Any, str]]:
    """(key, value, expected) triples from a pydantic ValidationError."""
    problems = []
    for err in exc.errors(include_url=False):
        key = ".".join(str(part) for part in err["loc"]) or "(top level)"
        value = err.get("input")
        expected = err["msg"]
        if err["type"] == "extra_forbidden":
            expected = "no such key (unknown keys are refused)"
        elif err["type"] == "missing":
            value = "(missing)"
            expected = "this key to be present"
        problems.append((key, value, _lower_first(expected)))
    return problems


class _NonFinite(ValueError):
    pass


def _refuse_constant(name: str) -> float:
    raise _NonFinite(f"{name} is not a number JSON allows")


def _has_non_finite(data: Any) -> bool:
    # The common case, everything finite, without building a single key path.
    stack = [data]
    while stack:
        item = stack.pop()
        if type(item) is float:
            if item - item != 0.0:  # inf - inf and nan - nan are nan
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, float) and not math.isfinite(item):
            return True
    return False


def _first_non_finite(data: Any, prefix: str = "") -> tuple[str, Any] | None:
    if isinstance(data, float) and not math.isfinite(data):
        return prefix or "(value)", data
    if isinstance(data, dict):
        for k, v in data.items():
            found = _first_non_finite(v, f"{prefix}.{k}" if prefix else str(k))
            if found:
                return found
    elif isinstance(data, list | tuple):
        for i, v in enumerate(data):
            found = _first_non_finite(v, f"{prefix}.{i}" if prefix else str(i))
            if found:
                return found
    return None


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text else text
