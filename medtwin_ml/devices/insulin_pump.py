"""An insulin pump: what it delivers when a controller commands a dose.

A pump delivers basal insulin in steps of ``basal_increment_u_per_h`` up to
``max_basal_u_per_h``, and boluses in steps of ``bolus_increment_u`` up to
``max_bolus_u``. A command between two steps is rounded down to the step below (a pump
never delivers more than it was asked); a command above the maximum is capped; a
negative command delivers nothing. The difference between commanded and delivered
insulin is what the pump's resolution costs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field

from medtwin_ml.config import BoundaryModel

__all__ = ["PumpSettings", "deliver_basal_u_per_h", "deliver_bolus_u"]

# Rounding down to a step must not lose a whole step to floating-point noise
# (0.3 / 0.05 = 5.999999999999999).
_STEP_SLACK = 1e-9


class PumpSettings(BoundaryModel):
    """Resolution and limits of an insulin pump (defaults: a common tubed pump)."""

    basal_increment_u_per_h: float = Field(
        0.05, gt=0, le=1, description="smallest basal-rate step [U/h]"
    )
    max_basal_u_per_h: float = Field(
        35.0, gt=0, le=100, description="largest basal rate [U/h]"
    )
    bolus_increment_u: float = Field(
        0.05, gt=0, le=1, description="smallest bolus step [U]"
    )
    max_bolus_u: float = Field(25.0, gt=0, le=100, description="largest bolus [U]")


def _quantise(
    command: np.ndarray, pumps: PumpSettings | Sequence[PumpSettings], kind: str
) -> np.ndarray:
    many = not isinstance(pumps, PumpSettings)
    group = list(pumps) if many else [pumps]
    if kind == "basal":
        step = np.array([p.basal_increment_u_per_h for p in group])
        cap = np.array([p.max_basal_u_per_h for p in group])
    else:
        step = np.array([p.bolus_increment_u for p in group])
        cap = np.array([p.max_bolus_u for p in group])
    if not many:
        step, cap = step[0], cap[0]
    command = np.clip(np.asarray(command, dtype=float), 0.0, cap)
    return np.floor(command / step + _STEP_SLACK) * step


def deliver_basal_u_per_h(
    commanded_u_per_h: np.ndarray, pumps: PumpSettings | Sequence[PumpSettings]
) -> np.ndarray:
    """Delivered basal rate for a commanded one, both in U/h.

    With one pump, any shape; with a sequence of ``n`` pumps, shape ``(n,)``, one
    command per pump.
    """
    return _quantise(commanded_u_per_h, pumps, "basal")


def deliver_bolus_u(
    commanded_u: np.ndarray, pumps: PumpSettings | Sequence[PumpSettings]
) -> np.ndarray:
    """Delivered bolus for a commanded one, both in U (shapes as for basal)."""
    return _quantise(commanded_u, pumps, "bolus")
