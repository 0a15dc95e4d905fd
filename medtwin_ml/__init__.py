"""medtwin-ml: digital twins of patients and devices, and fast surrogates of them.

The core package holds the solvers, devices, cohorts, dataset store, surrogate
architectures, validation and export. Importing it does not import torch; the
modules that need torch import it themselves.

Public names:

* :func:`get_twin`, :func:`twin_names`: the twin registry.
* :class:`Workspace`: where datasets, tracking, artifacts and bundles live.
* :class:`TwinSpec`, :class:`Case`, :class:`Quantity`, :class:`InputDomain`: how a twin
  describes itself.
* the error hierarchy in :mod:`medtwin_ml.errors`.
"""

from medtwin_ml._version import __version__
from medtwin_ml.errors import (
    ConfigError,
    DatasetError,
    DatasetIncompleteError,
    DatasetIntegrityError,
    MedtwinError,
    SimulationError,
    UnknownTwinError,
)
from medtwin_ml.registry import get_twin, twin_names, twins
from medtwin_ml.twin import Case, InputDomain, Quantity, TwinSpec
from medtwin_ml.workspace import Workspace

__all__ = [
    "Case",
    "ConfigError",
    "DatasetError",
    "DatasetIncompleteError",
    "DatasetIntegrityError",
    "InputDomain",
    "MedtwinError",
    "Quantity",
    "SimulationError",
    "TwinSpec",
    "UnknownTwinError",
    "Workspace",
    "__version__",
    "get_twin",
    "twin_names",
    "twins",
]
