"""The twin registry.

Built-in twins are listed here by import path and loaded on first use, so that
``import medtwin_ml`` stays light. Other packages add twins through the entry-point
group ``medtwin_ml.twins``, each entry pointing at a :class:`~medtwin_ml.twin.TwinSpec`.
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

from medtwin_ml.errors import UnknownTwinError
from medtwin_ml.twin import TwinSpec

__all__ = ["get_twin", "register", "twin_names", "twins"]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "medtwin_ml.twins"

# name -> "module:attribute" of a TwinSpec; loaded lazily.
_BUILTIN: dict[str, str] = {
    "emc": "medtwin_ml.solvers.emc:TWIN",
    "cardiovascular": "medtwin_ml.solvers.cardiovascular:TWIN",
    "respiratory": "medtwin_ml.solvers.respiratory:TWIN",
    "musculoskeletal": "medtwin_ml.solvers.musculoskeletal:TWIN",
    "skin": "medtwin_ml.solvers.skin:TWIN",
    "diabetes": "medtwin_ml.solvers.diabetes:TWIN",
}

_loaded: dict[str, TwinSpec] = {}


def register(spec: TwinSpec, *, replace: bool = False) -> TwinSpec:
    """Register a twin under ``spec.name``; refuse a second twin of the same name."""
    if spec.name in _loaded and not replace and _loaded[spec.name] is not spec:
        raise ValueError(f"a twin named {spec.name!r} is already registered")
    _loaded[spec.name] = spec
    return spec


def _sources() -> dict[str, str]:
    sources = dict(_BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        sources.setdefault(ep.name, ep.value)
    return sources


def twin_names() -> list[str]:
    """Names of every known twin, loaded or not, sorted."""
    return sorted(set(_sources()) | set(_loaded))


def get_twin(name: str) -> TwinSpec:
    """The twin registered as ``name``; :class:`UnknownTwinError` if there is none."""
    if name in _loaded:
        return _loaded[name]
    target = _sources().get(name)
    if target is None:
        raise UnknownTwinError(name, twin_names())
    module_name, _, attr = target.partition(":")
    spec = getattr(importlib.import_module(module_name), attr)
    if not isinstance(spec, TwinSpec) or spec.name != name:
        raise TypeError(f"{target} is not a TwinSpec named {name!r}")
    logger.debug("loaded twin %s from %s", name, target)
    return register(spec)


def twins() -> list[TwinSpec]:
    """Every known twin, loaded."""
    return [get_twin(name) for name in twin_names()]
