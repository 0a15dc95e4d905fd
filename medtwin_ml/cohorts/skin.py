"""Virtual skin for the skin twin: layer thickness and perfusion vary between people.

The centre values are the layer set of Jiang et al. (Burns 28:713, 2002). The spreads
(log-normal, 20 % for epidermis and dermis thickness, 30 % for subcutis thickness and
for perfusion) and the older-adult shifts (epidermis 15 % and dermis 20 % thinner,
perfusion 30 % lower) are assumptions that give a plausible spread, to be replaced by
measured distributions for a given body site.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medtwin_ml.solvers.skin._models import SkinParameters

__all__ = ["COHORTS", "cohort_card", "sample_cohort"]

COHORTS: dict[str, dict[str, float]] = {
    "adult": {"epidermis": 1.0, "dermis": 1.0, "perfusion": 1.0},
    "older_adult": {"epidermis": 0.85, "dermis": 0.8, "perfusion": 0.7},
}
_SPREAD = {"epidermis": 0.2, "dermis": 0.2, "subcutis": 0.3, "perfusion": 0.3}


def _clip(model: type[SkinParameters], name: str, value: float) -> float:
    meta = model.model_fields[name].metadata
    lo = max((getattr(m, "ge", None) or -np.inf) for m in meta)
    hi = min((getattr(m, "le", None) or np.inf) for m in meta)
    return float(np.clip(value, lo, hi))


def sample_cohort(cohort: str, n: int, seed: int) -> list[SkinParameters]:
    """``n`` virtual skins of ``cohort``, the same for the same seed."""
    if cohort not in COHORTS:
        raise ValueError(f"cohort {cohort!r}; expected one of {sorted(COHORTS)}")
    if n < 1:
        raise ValueError(f"n = {n}; expected at least 1 patient")
    shift = COHORTS[cohort]
    base = SkinParameters()
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        draw = {k: float(np.exp(rng.normal(0.0, s))) for k, s in _SPREAD.items()}
        values: dict[str, float] = {}
        for lay in ("epidermis", "dermis", "subcutis"):
            name = f"{lay}_thickness_mm"
            scale = draw[lay] * shift.get(lay, 1.0)
            values[name] = _clip(SkinParameters, name, getattr(base, name) * scale)
        for lay in ("dermis", "subcutis", "inner"):
            name = f"{lay}_perfusion_per_s"
            scale = draw["perfusion"] * shift["perfusion"]
            values[name] = _clip(SkinParameters, name, getattr(base, name) * scale)
        out.append(SkinParameters.model_validate(base.model_dump() | values))
    return out


def cohort_card(cohort: str) -> dict[str, Any]:
    """Where the cohort's numbers come from and what was assumed."""
    if cohort not in COHORTS:
        raise ValueError(f"cohort {cohort!r}; expected one of {sorted(COHORTS)}")
    return {
        "cohort": cohort,
        "sources": ["Jiang et al., Burns 28:713, 2002 (layer properties)"],
        "assumptions": [
            "log-normal spreads of thickness and perfusion",
            "older-adult thinning and perfusion loss",
        ],
        "shifts": dict(COHORTS[cohort]),
    }
