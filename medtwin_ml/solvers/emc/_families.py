"""Parametric scene families for datasets, each with its own input domain.

* ``enclosure``: a metal (PEC) device enclosure with an aperture in its top wall and
  an FR-4 circuit board with a copper trace inside; probe ``sensor_ic`` just above
  the board's centre.
* ``body_worn``: an ABS-housed device with a PEC board lying on layered tissue (dry
  skin, fat, muscle); probe ``sensor_ic`` inside the housing. The tissue slabs span
  the domain's width (their ends diffract; the domain stands for a patch of body).

Every scene of a family has the same domain and cells, so a dataset's fields share
one grid. Plane waves come from above: ``direction_deg`` in [-135, -45].
"""

from __future__ import annotations

import numpy as np

from medtwin_ml.solvers.emc._scene import EmcScene
from medtwin_ml.twin import DomainVariable, InputDomain

__all__ = ["FAMILIES", "FAMILY_DOMAINS", "build_scene", "sample_scenes"]

FAMILY_DOMAINS: dict[str, InputDomain] = {
    "enclosure": InputDomain(
        variables=[
            DomainVariable(name="enclosure_width_m", unit="m", low=0.08, high=0.16),
            DomainVariable(name="enclosure_height_m", unit="m", low=0.05, high=0.10),
            DomainVariable(name="aperture_width_m", unit="m", low=0.006, high=0.04),
            DomainVariable(
                name="aperture_offset_frac",
                unit="1",
                low=-0.3,
                high=0.3,
                description="Aperture centre from the wall's centre, in widths.",
            ),
            DomainVariable(
                name="board_length_frac",
                unit="1",
                low=0.4,
                high=0.8,
                description="Board length as a fraction of the inner width.",
            ),
        ]
    ),
    "body_worn": InputDomain(
        variables=[
            DomainVariable(name="skin_thickness_m", unit="m", low=0.001, high=0.003),
            DomainVariable(name="fat_thickness_m", unit="m", low=0.002, high=0.012),
            DomainVariable(name="device_width_m", unit="m", low=0.02, high=0.05),
            DomainVariable(name="device_height_m", unit="m", low=0.006, high=0.012),
            DomainVariable(name="device_gap_m", unit="m", low=0.0, high=0.004),
        ]
    ),
}
FAMILIES = tuple(FAMILY_DOMAINS)

_ENCLOSURE_DOMAIN_M = (0.24, 0.20)
_ENCLOSURE_CELL_M = 0.002
_BODY_DOMAIN_M = (0.12, 0.06)
_BODY_CELL_M = 0.001


def build_scene(family: str, values: dict[str, float]) -> EmcScene:
    """The scene of ``family`` for one point of its domain."""
    if family == "enclosure":
        return _enclosure(values)
    if family == "body_worn":
        return _body_worn(values)
    raise ValueError(f"unknown scene family {family!r}; expected one of {FAMILIES}")


def sample_scenes(family: str, n: int, seed: int) -> list[EmcScene]:
    """``n`` scenes of ``family`` from a seeded Sobol design over its domain."""
    if family not in FAMILY_DOMAINS:
        raise ValueError(f"unknown scene family {family!r}; expected one of {FAMILIES}")
    design = FAMILY_DOMAINS[family].sample(n, seed)
    return [build_scene(family, row) for row in design.to_dict("records")]


def _enclosure(v: dict[str, float]) -> EmcScene:
    lx, ly = _ENCLOSURE_DOMAIN_M
    dx = _ENCLOSURE_CELL_M
    w, h = v["enclosure_width_m"], v["enclosure_height_m"]
    wall = 2 * dx
    x0, y0 = (lx - w) / 2, (ly - h) / 2
    x1, y1 = x0 + w, y0 + h
    ap_c = (x0 + x1) / 2 + v["aperture_offset_frac"] * (w - 2 * wall)
    ap_half = min(v["aperture_width_m"], w - 4 * wall) / 2
    ap_c = float(np.clip(ap_c, x0 + wall + ap_half, x1 - wall - ap_half))
    board_len = v["board_length_frac"] * (w - 2 * wall)
    bx0 = (lx - board_len) / 2
    by0 = y0 + wall + 0.3 * (h - 2 * wall)
    objects = [
        {
            "shape": "rectangle",
            "name": "shell",
            "material": "pec",
            "min_m": [x0, y0],
            "max_m": [x1, y1],
        },
        {
            "shape": "rectangle",
            "name": "inside",
            "material": "air",
            "min_m": [x0 + wall, y0 + wall],
            "max_m": [x1 - wall, y1 - wall],
        },
        {
            "shape": "rectangle",
            "name": "aperture",
            "material": "air",
            "min_m": [ap_c - ap_half, y1 - wall - dx / 2],
            "max_m": [ap_c + ap_half, y1],
        },
        {
            "shape": "rectangle",
            "name": "board",
            "material": "fr4",
            "min_m": [bx0, by0],
            "max_m": [bx0 + board_len, by0 + 2 * dx],
        },
        {
            "shape": "rectangle",
            "name": "trace",
            "material": "copper",
            "min_m": [bx0 + 0.1 * board_len, by0 + 2 * dx],
            "max_m": [bx0 + 0.6 * board_len, by0 + 2.6 * dx],
        },
    ]
    probes = {
        "sensor_ic": {"point_m": [lx / 2, by0 + 4 * dx], "threshold_v_per_m": 3.0}
    }
    return EmcScene.model_validate(
        {"domain_m": [lx, ly], "cell_m": dx, "objects": objects, "probes": probes}
    )


def _body_worn(v: dict[str, float]) -> EmcScene:
    lx, ly = _BODY_DOMAIN_M
    dx = _BODY_CELL_M
    muscle_top = 0.02
    fat_top = muscle_top + v["fat_thickness_m"]
    skin_top = fat_top + v["skin_thickness_m"]
    w, h = v["device_width_m"], v["device_height_m"]
    dev_y0 = skin_top + v["device_gap_m"]
    dx0 = (lx - w) / 2
    objects = [
        {
            "shape": "rectangle",
            "name": "muscle",
            "material": "muscle",
            "min_m": [0.0, 0.0],
            "max_m": [lx, muscle_top],
        },
        {
            "shape": "rectangle",
            "name": "fat",
            "material": "fat",
            "min_m": [0.0, muscle_top],
            "max_m": [lx, fat_top],
        },
        {
            "shape": "rectangle",
            "name": "skin",
            "material": "skin_dry",
            "min_m": [0.0, fat_top],
            "max_m": [lx, skin_top],
        },
        {
            "shape": "rectangle",
            "name": "housing",
            "material": "abs",
            "min_m": [dx0, dev_y0],
            "max_m": [dx0 + w, dev_y0 + h],
        },
        {
            "shape": "rectangle",
            "name": "board",
            "material": "pec",
            "min_m": [dx0 + 2 * dx, dev_y0 + h / 2],
            "max_m": [dx0 + w - 2 * dx, dev_y0 + h / 2 + dx],
        },
    ]
    probes = {
        "sensor_ic": {
            "point_m": [lx / 2, dev_y0 + h / 2 + 2.5 * dx],
            "threshold_v_per_m": 3.0,
        }
    }
    return EmcScene.model_validate(
        {"domain_m": [lx, ly], "cell_m": dx, "objects": objects, "probes": probes}
    )
