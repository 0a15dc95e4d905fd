"""Lung mechanics under a ventilator: the equation of motion, batched.

Each compartment ``i`` has an elastic pressure ``Pel_i = V_i / C_i + PEEP - Pmus``,
with ``V_i`` its volume above the relaxed volume at PEEP and ``Pmus`` the patient's
inspiratory muscle pressure. The airway (resistance ``R0``) branches into the
compartments (``R_i``), so that::

    Paw = R0 Q + R_i Q_i + Pel_i   for every compartment,   Q = sum_i Q_i

With one compartment this is ``Paw = R Q + V / C + PEEP - Pmus``. Where the
ventilator sets the flow ``Q`` the branch flows follow from the equal branch
pressures; where it sets ``Paw`` they follow from a 2x2 linear solve, written out.

States ``(batch, 2)``: compartment volumes in L. Inputs ``(batch, 4)``: flow
controlled (1) or pressure controlled (0), set flow (L/s), set airway pressure
(cmH2O), muscle pressure (cmH2O).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medtwin_ml.solvers.respiratory._models import RespiratoryParameters

__all__ = ["LungMechanics"]


@dataclass
class LungMechanics:
    """Mechanics of a batch, arrays ``(batch,)`` in cmH2O, L and s."""

    two: np.ndarray
    r0: np.ndarray
    r1: np.ndarray
    r2: np.ndarray
    c1: np.ndarray
    c2: np.ndarray
    peep: np.ndarray

    @classmethod
    def from_cases(
        cls, params: Sequence[RespiratoryParameters], peep_cmh2o: np.ndarray
    ) -> LungMechanics:
        def col(name: str) -> np.ndarray:
            return np.array([getattr(p, name) for p in params], dtype=float)

        return cls(
            two=np.array([p.n_compartments == 2 for p in params]),
            r0=col("airway_resistance_cmh2o_s_per_l"),
            r1=col("resistance_1_cmh2o_s_per_l"),
            r2=col("resistance_2_cmh2o_s_per_l"),
            c1=col("compliance_1_ml_per_cmh2o") / 1000.0,
            c2=col("compliance_2_ml_per_cmh2o") / 1000.0,
            peep=np.asarray(peep_cmh2o, dtype=float),
        )

    @property
    def total_compliance_l_per_cmh2o(self) -> np.ndarray:
        return self.c1 + np.where(self.two, self.c2, 0.0)

    def branch_flows(
        self, y: np.ndarray, u: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Branch flows ``Q_1``, ``Q_2`` (L/s) and airway pressure (cmH2O).

        ``y`` is ``(..., batch, 2)`` and ``u`` ``(..., batch, 4)``; results are
        ``(..., batch)``.
        """
        flow_set, q_set, p_set, p_mus = u[..., 0] > 0.5, u[..., 1], u[..., 2], u[..., 3]
        pel1 = y[..., 0] / self.c1 + self.peep - p_mus
        pel2 = y[..., 1] / self.c2 + self.peep - p_mus
        r0, r1, r2 = self.r0, self.r1, self.r2

        # Flow set by the ventilator: the branches share it at equal pressure.
        q1_flow = np.where(
            self.two,
            (r2 * q_set + pel2 - pel1) / np.where(self.two, r1 + r2, 1.0),
            q_set,
        )

        # Airway pressure set: solve [[r0+r1, r0], [r0, r0+r2]] q = p_set - pel.
        a, d = r0 + r1, r0 + r2
        det = np.where(self.two, a * d - r0 * r0, 1.0)
        b1, b2 = p_set - pel1, p_set - pel2
        q1_press = np.where(self.two, (d * b1 - r0 * b2) / det, b1 / a)
        q2_press = np.where(self.two, (a * b2 - r0 * b1) / det, 0.0)

        q1 = np.where(flow_set, q1_flow, q1_press)
        q2 = np.where(flow_set, np.where(self.two, q_set - q1_flow, 0.0), q2_press)
        p_aw = np.where(flow_set, r0 * (q1 + q2) + r1 * q1 + pel1, p_set)
        return q1, q2, p_aw

    def rhs(self, t: float, y: np.ndarray, u: np.ndarray | None) -> np.ndarray:
        """``dV/dt``, ``(batch, 2)`` in L/s."""
        q1, q2, _ = self.branch_flows(y, u)
        return np.stack([q1, q2], axis=-1)
