"""A mechanical ventilator: volume control or pressure control with PEEP.

Every breath has the same timing: period ``T = 60 / rate``, inspiratory time
``Ti = T I/(I + E)``, expiration ``Te = T - Ti``. In volume control the ventilator
drives a constant flow ``VT / (Ti - pause)``, then holds the valves shut for the
inspiratory pause (zero flow), then opens the airway to PEEP. In pressure control
it holds the airway at ``PEEP + P_insp`` for ``Ti`` and at PEEP for ``Te``.

The program is sampled on the solver's step grid: each phase boundary falls on a
step, with ``T``, ``Ti`` and the pause rounded to whole steps per case, so that all
breaths of a case are identical and volume control delivers exactly ``VT``.

Arrays are ``(batch, n_steps)``; pressure cmH2O, flow L/s, time s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EXPIRATION", "INSPIRATION", "PAUSE", "VentilatorProgram", "program"]

INSPIRATION, PAUSE, EXPIRATION = 0, 1, 2


@dataclass(frozen=True)
class VentilatorProgram:
    """What the ventilator imposes over each step ``[t_k, t_k + dt)``.

    Attributes:
        flow_controlled: ``True`` where the ventilator sets the flow, ``False``
            where it sets the airway pressure; ``(batch, n_steps)``.
        flow_l_s: set flow where flow-controlled; ``(batch, n_steps)``.
        pressure_cmh2o: set airway pressure where pressure-controlled.
        phase: :data:`INSPIRATION`, :data:`PAUSE` or :data:`EXPIRATION`.
        breath: index of the breath each step belongs to, from 0.
        period_s: the breath period actually used after rounding, ``(batch,)``.
    """

    flow_controlled: np.ndarray
    flow_l_s: np.ndarray
    pressure_cmh2o: np.ndarray
    phase: np.ndarray
    breath: np.ndarray
    period_s: np.ndarray


def program(
    *,
    volume_control: np.ndarray,
    peep_cmh2o: np.ndarray,
    rate_per_min: np.ndarray,
    ie_ratio: np.ndarray,
    tidal_volume_ml: np.ndarray,
    inspiratory_pressure_cmh2o: np.ndarray,
    inspiratory_pause_s: np.ndarray,
    dt: float,
    n_steps: int,
) -> VentilatorProgram:
    """Sample the ventilator's program for a batch of settings, each ``(batch,)``.

    Raises:
        ValueError: if a setting leaves no step of inspiratory flow or of
            expiration at this step size.
    """
    period = np.maximum(np.round(60.0 / rate_per_min / dt), 2).astype(int)
    n_insp = np.round(period * ie_ratio / (1.0 + ie_ratio)).astype(int)
    n_pause = np.where(volume_control, np.round(inspiratory_pause_s / dt), 0)
    n_pause = n_pause.astype(int)
    n_flow = n_insp - n_pause
    bad = (n_flow < 1) | (n_insp >= period)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"case {i}: rate {rate_per_min[i]:g}/min, I:E {ie_ratio[i]:g} and pause "
            f"{inspiratory_pause_s[i]:g} s leave no inspiratory flow or no "
            f"expiration at a {dt:g} s step; expected a shorter pause or a longer "
            "breath"
        )

    k = np.arange(n_steps)[None, :]
    breath = k // period[:, None]
    within = k - breath * period[:, None]
    phase = np.where(
        within < n_flow[:, None],
        INSPIRATION,
        np.where(within < n_insp[:, None], PAUSE, EXPIRATION),
    )
    vc = volume_control[:, None]
    flow_controlled = vc & (phase != EXPIRATION)
    flow = np.where(
        phase == INSPIRATION,
        (tidal_volume_ml / 1000.0 / (n_flow * dt))[:, None],
        0.0,
    )
    pressure = np.where(
        ~vc & (phase == INSPIRATION),
        (peep_cmh2o + inspiratory_pressure_cmh2o)[:, None],
        peep_cmh2o[:, None],
    )
    return VentilatorProgram(
        flow_controlled=np.broadcast_to(flow_controlled, phase.shape),
        flow_l_s=np.where(flow_controlled, flow, 0.0),
        pressure_cmh2o=pressure,
        phase=phase,
        breath=breath,
        period_s=period * dt,
    )
