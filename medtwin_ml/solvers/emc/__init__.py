"""The EMC twin: a 2D finite-difference time-domain (FDTD) field solver.

Yee grid (TMz and TEz) with lossy dielectrics and PEC, convolutional PML, total-field/
scattered-field plane waves at any angle, current sources, running DFTs; numpy,
torch and numba backends on one code path. Scenes are JSON (:class:`EmcScene`),
scenarios a plane wave or an IEC 60601-1-2 immunity test (:class:`EmcScenario`),
solver settings :class:`EmcSolverSettings`.

Public names: :data:`TWIN`, :class:`Fdtd`, :class:`Waveform`, :class:`EmcScene`,
:class:`EmcScenario`, :class:`EmcSolverSettings`, :func:`material_properties`,
:func:`numerical_wavenumber`, :func:`mie_cylinder_tmz`, :func:`solve_exposure`,
:func:`sample_scenes`, :func:`build_scene`.
"""

from medtwin_ml.solvers.emc._engine import Fdtd, Waveform
from medtwin_ml.solvers.emc._families import FAMILIES, build_scene, sample_scenes
from medtwin_ml.solvers.emc._materials import MATERIAL_NAMES, material_properties
from medtwin_ml.solvers.emc._mie import mie_cylinder_tmz
from medtwin_ml.solvers.emc._scenario import EmcScenario, Exposure, exposures
from medtwin_ml.solvers.emc._scene import EmcScene, rasterize
from medtwin_ml.solvers.emc._solve import EmcSolverSettings, solve_exposure
from medtwin_ml.solvers.emc._tfsf import numerical_wavenumber
from medtwin_ml.solvers.emc._twin import (
    TWIN,
    cases_from_design,
    simulate,
    simulate_batch,
)

__all__ = [
    "FAMILIES",
    "MATERIAL_NAMES",
    "TWIN",
    "EmcScenario",
    "EmcScene",
    "EmcSolverSettings",
    "Exposure",
    "Fdtd",
    "Waveform",
    "build_scene",
    "cases_from_design",
    "exposures",
    "material_properties",
    "mie_cylinder_tmz",
    "numerical_wavenumber",
    "rasterize",
    "sample_scenes",
    "simulate",
    "simulate_batch",
    "solve_exposure",
]
