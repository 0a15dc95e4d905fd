"""A continuous-flow left ventricular assist device: speed to flow through a pump curve.

The pump draws blood from the left ventricle and returns it to the aorta. Its head
(outlet minus inlet pressure) follows the pump curve of Simaan et al. (IEEE TCST 17,
2009), in which the inlet and outlet cannulae are lumped into the coefficients::

    P_ao - P_lv = b0 Q + b1 dQ/dt + b2 w^2

with ``b0 < 0`` (head falls with flow), ``b1 < 0`` (the inertance of the blood in
pump and cannulae) and ``b2 > 0``. Read as an equation of motion for the pump flow
``Q``::

    L dQ/dt = b2 w^2 - (P_ao - P_lv) - (R + R_k) Q,   L = -b1,  R = -b0

When the ventricle is drawn down the inlet collapses: the suction resistance ``R_k``
grows linearly as the ventricular pressure falls below a threshold, as Simaan et al.
model it, which is what keeps a pump at high speed from emptying the ventricle.

Units: pressure mmHg, flow mL/s, speed in thousands of revolutions per minute (krpm).
"""

from __future__ import annotations

import numpy as np

__all__ = ["SIMAAN_2009", "PumpCurve"]


class PumpCurve:
    """Coefficients of a rotary blood pump and its inflow-suction law.

    Args:
        b0_mmhg_s_per_ml: head loss per unit flow (negative).
        b1_mmhg_s2_per_ml: inertance term (negative).
        b2_mmhg_per_krpm2: head per squared speed (positive).
        suction_threshold_mmhg: ventricular pressure below which suction begins.
        suction_slope_s_per_ml: growth of the suction resistance per mmHg below the
            threshold (negative, as published).
        suction_max_mmhg_s_per_ml: cap of the suction resistance. A fully collapsed
            inlet would make the flow equation arbitrarily stiff; the cap keeps its
            time constant ``L / R_k`` above one millisecond, longer than the fixed
            step the circulation is integrated with.
    """

    def __init__(
        self,
        b0_mmhg_s_per_ml: float,
        b1_mmhg_s2_per_ml: float,
        b2_mmhg_per_krpm2: float,
        suction_threshold_mmhg: float,
        suction_slope_s_per_ml: float,
        suction_max_mmhg_s_per_ml: float,
    ):
        if not (b0_mmhg_s_per_ml < 0 and b1_mmhg_s2_per_ml < 0):
            raise ValueError(
                f"b0 = {b0_mmhg_s_per_ml}, b1 = {b1_mmhg_s2_per_ml}; expected both "
                "negative (head falls with flow, inertance opposes acceleration)"
            )
        if not b2_mmhg_per_krpm2 > 0:
            raise ValueError(f"b2 = {b2_mmhg_per_krpm2}; expected a positive value")
        self.b0 = float(b0_mmhg_s_per_ml)
        self.b1 = float(b1_mmhg_s2_per_ml)
        self.b2 = float(b2_mmhg_per_krpm2)
        self.suction_threshold = float(suction_threshold_mmhg)
        self.suction_slope = float(suction_slope_s_per_ml)
        self.suction_max = float(suction_max_mmhg_s_per_ml)

    def head(self, speed_krpm: np.ndarray, flow_ml_s: np.ndarray) -> np.ndarray:
        """Steady pressure rise across the pump (mmHg), ``b0 Q + b2 w^2``."""
        return self.b0 * flow_ml_s + self.b2 * np.square(speed_krpm)

    def steady_flow(self, speed_krpm: np.ndarray, head_mmhg: np.ndarray) -> np.ndarray:
        """Flow (mL/s) at a steady head, the inverse of :meth:`head`."""
        return (head_mmhg - self.b2 * np.square(speed_krpm)) / self.b0

    def suction_resistance(self, p_lv_mmhg: np.ndarray) -> np.ndarray:
        """Inlet suction resistance (mmHg s/mL); zero above the threshold."""
        below = np.minimum(p_lv_mmhg - self.suction_threshold, 0.0)
        return np.minimum(self.suction_slope * below, self.suction_max)

    def flow_derivative(
        self,
        speed_krpm: np.ndarray,
        flow_ml_s: np.ndarray,
        p_lv_mmhg: np.ndarray,
        p_ao_mmhg: np.ndarray,
    ) -> np.ndarray:
        """``dQ/dt`` (mL/s^2) of the pump flow; arrays broadcast, e.g. ``(batch,)``."""
        resistance = -self.b0 + self.suction_resistance(p_lv_mmhg)
        drive = self.b2 * np.square(speed_krpm) - (p_ao_mmhg - p_lv_mmhg)
        return (drive - resistance * flow_ml_s) / (-self.b1)


SIMAAN_2009 = PumpCurve(
    b0_mmhg_s_per_ml=-0.1707,
    b1_mmhg_s2_per_ml=-0.02177,
    b2_mmhg_per_krpm2=0.99025,
    suction_threshold_mmhg=1.0,
    suction_slope_s_per_ml=-3.5,
    suction_max_mmhg_s_per_ml=20.0,
)
"""Pump coefficients of Simaan et al. 2009 (b2 = 9.9025e-7 mmHg/rpm^2, here per
krpm^2). Check against the paper before quoting them as the device's own curve."""
