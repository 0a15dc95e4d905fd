"""Boundary models of the musculoskeletal twin: a seated knee moved by two muscles.

The joint angle ``theta`` is the knee's extension from the shank hanging vertically
(0 deg, knee flexed 90 deg); positive extends, 90 deg is a straight knee. The
extensor (lumped quadriceps) and the flexor (lumped hamstrings) each are a Hill-type
muscle-tendon unit with a compliant tendon and a constant moment arm.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from medtwin_ml.config import BoundaryModel
from medtwin_ml.solvers.musculoskeletal._muscle import K_LIN

__all__ = [
    "ExoTorqueBlock",
    "MusculoskeletalDevice",
    "MusculoskeletalParameters",
    "MusculoskeletalScenario",
    "StimulationBurst",
]

_MUSCLES = ("extensor", "flexor")
MIN_FIBER_TAU_S = 2.8e-4


def fiber_time_constant_s(
    damping: float, slack_m: float, l_opt_m: float, vmax_lopt_per_s: float
) -> float:
    """Time constant (s) of a passive fiber against the linear part of its tendon."""
    return damping * slack_m / (K_LIN * vmax_lopt_per_s * l_opt_m)


class MusculoskeletalParameters(BoundaryModel):
    """One virtual patient: shank-and-foot segment, knee and two muscle-tendon units.

    Defaults: a 75 kg, 175 cm adult man (segment figures from Winter's anthropometric
    tables; muscle figures of the order of lower-limb musculoskeletal models).
    """

    shank_foot_mass_kg: float = Field(default=4.6, gt=0.2, le=20)
    com_distance_m: float = Field(
        default=0.26, gt=0.02, le=0.6, description="Knee to segment centre of mass, m."
    )
    inertia_kg_m2: float = Field(
        default=0.46, gt=0.005, le=5, description="Segment inertia about the knee."
    )
    joint_damping_nm_s_per_rad: float = Field(default=0.3, ge=0, le=50)
    extension_limit_deg: float = Field(default=90.0, ge=30, le=120)
    flexion_limit_deg: float = Field(default=-40.0, ge=-90, le=0)

    extensor_max_force_n: float = Field(default=6000.0, gt=10, le=20000)
    extensor_optimal_fiber_length_m: float = Field(default=0.09, gt=0.01, le=0.5)
    extensor_tendon_slack_length_m: float = Field(default=0.15, gt=0.01, le=1.0)
    extensor_pennation_deg: float = Field(default=5.0, ge=0, le=40)
    extensor_moment_arm_m: float = Field(default=0.045, gt=0.005, le=0.15)
    extensor_optimal_angle_deg: float = Field(
        default=0.0,
        ge=-60,
        le=120,
        description="Joint angle (deg) at which fiber and tendon are at optimal and "
        "slack length.",
    )
    extensor_vmax_lopt_per_s: float = Field(default=10.0, gt=1, le=20)
    extensor_fiber_damping: float = Field(
        default=0.1, ge=0.05, le=1.0, description="Fiber damping, units of F0 / v_max."
    )
    extensor_tau_act_ms: float = Field(default=15.0, ge=5, le=100)
    extensor_tau_deact_ms: float = Field(default=60.0, ge=10, le=300)

    flexor_max_force_n: float = Field(default=3000.0, gt=10, le=20000)
    flexor_optimal_fiber_length_m: float = Field(default=0.10, gt=0.01, le=0.5)
    flexor_tendon_slack_length_m: float = Field(default=0.33, gt=0.01, le=1.0)
    flexor_pennation_deg: float = Field(default=8.0, ge=0, le=40)
    flexor_moment_arm_m: float = Field(default=0.035, gt=0.005, le=0.15)
    flexor_optimal_angle_deg: float = Field(default=60.0, ge=-60, le=120)
    flexor_vmax_lopt_per_s: float = Field(default=10.0, gt=1, le=20)
    flexor_fiber_damping: float = Field(default=0.1, ge=0.05, le=1.0)
    flexor_tau_act_ms: float = Field(default=15.0, ge=5, le=100)
    flexor_tau_deact_ms: float = Field(default=60.0, ge=10, le=300)

    @model_validator(mode="after")
    def _consistent(self) -> MusculoskeletalParameters:
        if self.flexion_limit_deg >= self.extension_limit_deg:
            raise ValueError(
                f"flexion_limit_deg {self.flexion_limit_deg} must be below "
                f"extension_limit_deg {self.extension_limit_deg}"
            )
        for m in _MUSCLES:
            tau_s = fiber_time_constant_s(
                getattr(self, f"{m}_fiber_damping"),
                getattr(self, f"{m}_tendon_slack_length_m"),
                getattr(self, f"{m}_optimal_fiber_length_m"),
                getattr(self, f"{m}_vmax_lopt_per_s"),
            )
            # The solver's fixed step is stable only above this time constant.
            if tau_s < MIN_FIBER_TAU_S:
                raise ValueError(
                    f"{m}: fiber_damping * tendon_slack_length_m / (42.8 * "
                    f"vmax_lopt_per_s * optimal_fiber_length_m) = {tau_s * 1e3:.3g} "
                    f"ms; expected at least {MIN_FIBER_TAU_S * 1e3:g} ms (raise the "
                    "damping or tendon length, or lower v_max)"
                )
            if getattr(self, f"{m}_tau_deact_ms") < getattr(self, f"{m}_tau_act_ms"):
                raise ValueError(
                    f"{m}_tau_deact_ms must not be shorter than {m}_tau_act_ms"
                )
        return self


class MusculoskeletalDevice(BoundaryModel):
    """FES stimulator on one muscle and an exoskeleton on the knee.

    The stimulation schedule (when, and at which pulse width) is in the scenario; the
    stimulator's fixed settings and its recruitment curve are here. ``seed`` is
    accepted for the common CLI and unused: the solver is deterministic.
    """

    stim_muscle: Literal["extensor", "flexor"] = "extensor"
    amplitude_ma: float = Field(default=50.0, ge=0, le=150)
    frequency_hz: float = Field(default=35.0, ge=1, le=100)
    threshold_charge_uc: float = Field(
        default=4.0, ge=0, le=100, description="Charge per pulse (uC) of first twitch."
    )
    saturation_charge_uc: float = Field(
        default=24.0, gt=0, le=200, description="Charge per pulse (uC) recruiting all."
    )
    max_excitation: float = Field(
        default=0.3, ge=0, le=1, description="Reachable fraction of the muscle."
    )
    exo_stiffness_nm_per_rad: float = Field(default=0.0, ge=0, le=500)
    exo_damping_nm_s_per_rad: float = Field(default=0.0, ge=0, le=50)
    exo_target_angle_deg: float = Field(default=0.0, ge=-40, le=90)
    exo_max_torque_nm: float = Field(default=60.0, ge=0, le=200)
    seed: int = Field(default=0, description="Unused: the solver is deterministic.")

    @model_validator(mode="after")
    def _ordered(self) -> MusculoskeletalDevice:
        if self.saturation_charge_uc <= self.threshold_charge_uc:
            raise ValueError(
                f"saturation_charge_uc {self.saturation_charge_uc} must exceed "
                f"threshold_charge_uc {self.threshold_charge_uc}"
            )
        return self


class StimulationBurst(BoundaryModel):
    """Stimulation at ``pulse_width_us`` over ``[start_s, start_s + duration_s)``."""

    start_s: float = Field(ge=0)
    duration_s: float = Field(gt=0)
    pulse_width_us: float = Field(ge=0, le=1000)


class ExoTorqueBlock(BoundaryModel):
    """Scheduled exoskeleton torque (N m, positive extends) over a time window."""

    start_s: float = Field(ge=0)
    duration_s: float = Field(gt=0)
    torque_nm: float = Field(ge=-200, le=200)


class MusculoskeletalScenario(BoundaryModel):
    """What happens over the simulated time: stimulation bursts and exo torque."""

    duration_s: float = Field(default=3.0, gt=0, le=60)
    output_interval_s: float = Field(default=0.01, ge=0.001, le=0.1)
    initial_angle_deg: float = Field(default=0.0, ge=-40, le=90)
    initial_velocity_deg_s: float = Field(default=0.0, ge=-1000, le=1000)
    stimulation: list[StimulationBurst] = Field(
        default_factory=lambda: [
            StimulationBurst(start_s=0.5, duration_s=1.0, pulse_width_us=300.0)
        ]
    )
    exo_torque: list[ExoTorqueBlock] = Field(default_factory=list)

    @model_validator(mode="after")
    def _inside(self) -> MusculoskeletalScenario:
        n = self.duration_s / self.output_interval_s
        if abs(n - round(n)) > 1e-6 * max(1.0, n):
            raise ValueError(
                f"duration_s {self.duration_s} is not a whole number of "
                f"output_interval_s {self.output_interval_s}"
            )
        for kind, blocks in (
            ("stimulation", self.stimulation),
            ("exo_torque", self.exo_torque),
        ):
            for i, b in enumerate(blocks):
                if b.start_s >= self.duration_s:
                    raise ValueError(
                        f"{kind}[{i}].start_s {b.start_s} is not before duration_s "
                        f"{self.duration_s}"
                    )
        return self
