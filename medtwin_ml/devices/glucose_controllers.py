"""Controllers that close the loop between a CGM and an insulin pump.

Each controller acts on a group of ``n`` patients at once: readings, commands and
internal state are arrays of shape ``(n,)``. A controller is called once a minute with
the latest CGM reading (held between samples), a mask of the patients whose reading
is new this minute, and the carbohydrate announced this minute; it returns the
commanded basal rate (U/h) and bolus (U) for that minute, which the pump then rounds
to what it can deliver.

* :class:`BasalBolusController`: the conventional therapy. A fixed basal rate, and at
  each announced meal a bolus of ``carbs / carb_ratio`` plus a correction
  ``(reading - target) / correction_factor`` when the reading is above the correction
  threshold.
* :class:`PidController`: an artificial pancreas without meal announcement. The basal
  rate is raised or lowered by a proportional-integral-derivative law on the CGM
  error, with gains expressed in units of the patient's correction factor so that one
  setting suits patients of every insulin sensitivity.

Unset settings come from the patient: the basal rate from its steady state, the carb
ratio and correction factor from its therapy settings, or, where those are unknown,
from the clinical 500 and 1800 rules (``500 / TDI`` g/U and ``1800 / TDI`` mg/dL/U,
with the total daily insulin TDI estimated as twice the daily basal insulin: basal is
about half of the daily dose in pump therapy).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from medtwin_ml.config import BoundaryModel

__all__ = [
    "BasalBolusController",
    "BasalBolusSettings",
    "PidController",
    "PidSettings",
    "carb_ratio_g_per_u",
    "correction_factor_mg_dl_per_u",
    "total_daily_insulin_u",
]


def total_daily_insulin_u(basal_u_per_h: np.ndarray) -> np.ndarray:
    """Estimated total daily insulin [U]: twice the daily basal insulin."""
    return 2.0 * 24.0 * np.asarray(basal_u_per_h, dtype=float)


def carb_ratio_g_per_u(total_daily_insulin_u: np.ndarray) -> np.ndarray:
    """Carbohydrate covered by one unit [g/U], by the 500 rule."""
    return 500.0 / np.asarray(total_daily_insulin_u, dtype=float)


def correction_factor_mg_dl_per_u(total_daily_insulin_u: np.ndarray) -> np.ndarray:
    """Glucose drop per unit [mg/dL/U], by the 1800 rule."""
    return 1800.0 / np.asarray(total_daily_insulin_u, dtype=float)


class BasalBolusSettings(BoundaryModel):
    """Settings of basal-bolus therapy; unset values derive from the patient."""

    basal_u_per_h: float | None = Field(
        None, ge=0, le=35, description="basal rate [U/h]; default: the patient's u2ss"
    )
    carb_ratio_g_per_u: float | None = Field(
        None, gt=0, le=200, description="carbohydrate per unit [g/U]; default: 500 rule"
    )
    correction_factor_mg_dl_per_u: float | None = Field(
        None, gt=0, le=500, description="glucose drop per unit [mg/dL/U]; 1800 rule"
    )
    target_mg_dl: float = Field(
        120.0, ge=70, le=200, description="glucose a correction aims at [mg/dL]"
    )
    correction_above_mg_dl: float = Field(
        150.0, ge=70, le=300, description="correct only above this reading [mg/dL]"
    )


class PidSettings(BoundaryModel):
    """Gains of the PID artificial pancreas, in units of the correction factor.

    The commanded rate is ``basal + (kp * e + ki * integral(e) + kd * de/dt) / CF``
    U/h, with ``e = reading - target`` in mg/dL and ``CF`` the patient's correction
    factor in mg/dL/U.
    """

    basal_u_per_h: float | None = Field(
        None,
        ge=0,
        le=35,
        description="rate at target [U/h]; default: the patient's u2ss",
    )
    correction_factor_mg_dl_per_u: float | None = Field(
        None, gt=0, le=500, description="glucose drop per unit [mg/dL/U]; 1800 rule"
    )
    target_mg_dl: float = Field(120.0, ge=70, le=200, description="set point [mg/dL]")
    kp_per_h: float = Field(0.5, ge=0, le=20, description="proportional gain [1/h]")
    ki_per_h_min: float = Field(
        0.005, ge=0, le=1, description="integral gain [1/(h min)]"
    )
    kd_min_per_h: float = Field(
        10.0, ge=0, le=600, description="derivative gain [min/h]"
    )
    integral_limit_mg_dl_min: float = Field(
        20000.0, gt=0, description="anti-windup bound of the error integral [mg/dL min]"
    )


def _pick(values: list[float | None], default: np.ndarray) -> np.ndarray:
    given = np.array([np.nan if v is None else v for v in values], dtype=float)
    return np.where(np.isnan(given), default, given)


class BasalBolusController:
    """Basal-bolus therapy for ``n`` patients.

    Args:
        settings: one :class:`BasalBolusSettings` per patient.
        patient_basal_u_per_h: each patient's steady basal rate, shape ``(n,)``.
        patient_carb_ratio: each patient's carb ratio [g/U], shape ``(n,)``.
        patient_correction_factor: each patient's correction factor [mg/dL/U].
    """

    def __init__(
        self,
        settings: list[BasalBolusSettings],
        patient_basal_u_per_h: np.ndarray,
        patient_carb_ratio: np.ndarray,
        patient_correction_factor: np.ndarray,
    ):
        patient_basal_u_per_h = np.asarray(patient_basal_u_per_h, dtype=float)
        self.basal_u_per_h = _pick(
            [s.basal_u_per_h for s in settings], patient_basal_u_per_h
        )
        self.carb_ratio = _pick(
            [s.carb_ratio_g_per_u for s in settings], patient_carb_ratio
        )
        self.correction_factor = _pick(
            [s.correction_factor_mg_dl_per_u for s in settings],
            patient_correction_factor,
        )
        self.target = np.array([s.target_mg_dl for s in settings])
        self.threshold = np.array([s.correction_above_mg_dl for s in settings])

    def act(
        self,
        t_min: float,
        reading_mg_dl: np.ndarray,
        new_reading: np.ndarray,
        announced_carbs_g: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Commanded basal [U/h] and bolus [U] for the minute starting at ``t_min``."""
        meal = announced_carbs_g > 0
        correction = np.where(
            meal & (reading_mg_dl > self.threshold),
            (reading_mg_dl - self.target) / self.correction_factor,
            0.0,
        )
        bolus = np.where(meal, announced_carbs_g / self.carb_ratio, 0.0) + correction
        return self.basal_u_per_h.copy(), bolus


class PidController:
    """A PID artificial pancreas for ``n`` patients (no meal announcement).

    The error integral and derivative update only when a new reading arrives; between
    readings the last command holds.
    """

    def __init__(
        self,
        settings: list[PidSettings],
        patient_basal_u_per_h: np.ndarray,
        patient_correction_factor: np.ndarray,
    ):
        patient_basal_u_per_h = np.asarray(patient_basal_u_per_h, dtype=float)
        self.basal_u_per_h = _pick(
            [s.basal_u_per_h for s in settings], patient_basal_u_per_h
        )
        self.correction_factor = _pick(
            [s.correction_factor_mg_dl_per_u for s in settings],
            patient_correction_factor,
        )
        self.target = np.array([s.target_mg_dl for s in settings])
        self.kp = np.array([s.kp_per_h for s in settings])
        self.ki = np.array([s.ki_per_h_min for s in settings])
        self.kd = np.array([s.kd_min_per_h for s in settings])
        self.limit = np.array([s.integral_limit_mg_dl_min for s in settings])
        n = patient_basal_u_per_h.shape[0]
        self.integral = np.zeros(n)
        self.last_error = np.full(n, np.nan)
        self.last_time = np.full(n, np.nan)
        self.command = self.basal_u_per_h.copy()

    def act(
        self,
        t_min: float,
        reading_mg_dl: np.ndarray,
        new_reading: np.ndarray,
        announced_carbs_g: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Commanded basal [U/h] and bolus [U] (always zero) for this minute."""
        new = np.asarray(new_reading, dtype=bool)
        if new.any():
            error = reading_mg_dl - self.target
            first = np.isnan(self.last_time)
            dt = np.where(first, 0.0, t_min - self.last_time)
            self.integral = np.where(
                new,
                np.clip(self.integral + error * dt, -self.limit, self.limit),
                self.integral,
            )
            with np.errstate(invalid="ignore", divide="ignore"):
                slope = np.where(first | (dt <= 0), 0.0, (error - self.last_error) / dt)
            extra = (
                self.kp * error + self.ki * self.integral + self.kd * slope
            ) / self.correction_factor
            self.command = np.where(
                new, np.maximum(self.basal_u_per_h + extra, 0.0), self.command
            )
            self.last_error = np.where(new, error, self.last_error)
            self.last_time = np.where(new, t_min, self.last_time)
        return self.command.copy(), np.zeros_like(self.command)
