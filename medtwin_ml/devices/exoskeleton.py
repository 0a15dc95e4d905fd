"""A one-joint exoskeleton: scheduled assist torque plus an impedance (PD) law.

``tau = tau_scheduled + K (theta_target - theta) - D omega``, saturated at the
actuator's torque limit. With ``K = D = 0`` it is a pure torque source.
"""

from __future__ import annotations

import numpy as np

__all__ = ["exoskeleton_torque"]


def exoskeleton_torque(
    theta_rad: np.ndarray,
    omega_rad_s: np.ndarray,
    scheduled_nm: np.ndarray,
    stiffness_nm_per_rad: np.ndarray,
    damping_nm_s_per_rad: np.ndarray,
    target_rad: np.ndarray,
    max_torque_nm: np.ndarray,
) -> np.ndarray:
    """Joint torque of the exoskeleton (N m, positive extends); arrays broadcast."""
    tau = (
        scheduled_nm
        + stiffness_nm_per_rad * (target_rad - theta_rad)
        - damping_nm_s_per_rad * omega_rad_s
    )
    return np.clip(tau, -max_torque_nm, max_torque_nm)
