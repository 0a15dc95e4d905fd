"""The equations of the UVA/Padova type-1 model, vectorised over patients.

Written from Dalla Man, Rizza and Cobelli, IEEE TBME 54(10):1740, 2007 (meal model,
glucose and insulin subsystems) with the subcutaneous insulin and glucose
compartments of Kovatchev et al., JDST 3(1):44, 2009 and Dalla Man et al., JDST
8(1):26, 2014. States are laid out as ``(state, patient)`` = ``(13, n)``; see
:data:`~medtwin_ml.solvers.diabetes._parameters.STATE_NAMES` for their order and units.

Exogenous inputs, each of shape ``(n,)`` and held constant over an interval:

* ``insulin_pmol_kg_min``: subcutaneous insulin infusion (U/min * 6000 / BW);
* ``meal_mg_min``: glucose eaten per minute, entering the solid stomach;
* ``dose_mg``: the size of the meal being digested, which sets where gastric emptying
  slows down and recovers.
"""

from __future__ import annotations

import numpy as np

from medtwin_ml.solvers.diabetes._parameters import PatientArrays

__all__ = ["N_STATES", "PMOL_PER_U", "rhs", "steady_state"]

N_STATES = 13
PMOL_PER_U = 6000.0
"""One unit of insulin is 6000 pmol."""


def rhs(
    y: np.ndarray,
    insulin_pmol_kg_min: np.ndarray,
    meal_mg_min: np.ndarray,
    dose_mg: np.ndarray,
    p: PatientArrays,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Time derivative of the 13 states, shape ``(13, n)``, per minute.

    Args:
        y: states, shape ``(13, n)``.
        insulin_pmol_kg_min, meal_mg_min, dose_mg: inputs, shape ``(n,)``.
        p: patient parameters, arrays of shape ``(n,)``.
        out: optional array of shape ``(13, n)`` to write into.
    """
    qsto1, qsto2, qgut, gp, gt, ip, x, i1, id_, il, isc1, isc2, gs = y
    dy = np.empty_like(y) if out is None else out

    # Gastrointestinal tract: grinding at kmax, emptying between kmin and kmax through
    # two tanh switches placed at fractions b and d of the meal being digested.
    qsto = qsto1 + qsto2
    alpha = 2.5 / (dose_mg * (1.0 - p.b))
    beta = 2.5 / (dose_mg * p.d)
    kempt = p.kmin + 0.5 * (p.kmax - p.kmin) * (
        np.tanh(alpha * (qsto - p.b * dose_mg))
        - np.tanh(beta * (qsto - p.d * dose_mg))
        + 2.0
    )
    dy[0] = meal_mg_min - p.kmax * qsto1
    dy[1] = p.kmax * qsto1 - kempt * qsto2
    dy[2] = kempt * qsto2 - p.kabs * qgut
    ra = p.f * p.kabs * qgut / p.BW

    # Glucose: liver production floored at zero, insulin-independent and dependent
    # utilisation, renal excretion above the threshold ke2.
    egp = np.maximum(p.kp1 - p.kp2 * gp - p.kp3 * id_, 0.0)
    uid = (p.Vm0 + p.Vmx * x) * gt / (p.Km0 + gt)
    renal = p.ke1 * np.maximum(gp - p.ke2, 0.0)
    dy[3] = egp + ra - p.Fsnc - renal - p.k1 * gp + p.k2 * gt
    dy[4] = p.k1 * gp - p.k2 * gt - uid

    # Insulin: plasma and liver, fed by the two subcutaneous compartments.
    plasma_insulin = ip / p.Vi
    dy[5] = p.m1 * il - (p.m2 + p.m4) * ip + p.ka1 * isc1 + p.ka2 * isc2
    dy[6] = p.p2u * (plasma_insulin - p.Ib - x)
    dy[7] = p.ki * (plasma_insulin - i1)
    dy[8] = p.ki * (i1 - id_)
    dy[9] = p.m2 * ip - (p.m1 + p.m30) * il
    dy[10] = insulin_pmol_kg_min - (p.kd + p.ka1) * isc1
    dy[11] = p.kd * isc1 - p.ka2 * isc2

    # Subcutaneous glucose follows plasma glucose with time constant 1/ksc.
    dy[12] = p.ksc * (gp - gs)
    return dy


def steady_state(p: PatientArrays, insulin_pmol_kg_min: np.ndarray) -> np.ndarray:
    """The fasting steady state at a constant insulin infusion, shape ``(13, n)``.

    The insulin states follow in closed form; plasma glucose solves one monotone
    equation (production minus utilisation and excretion), found by bisection, and
    tissue glucose is the positive root of a quadratic.

    Raises:
        ValueError: if some patient has no steady state with positive glucose at this
            infusion rate (the insulin drives utilisation above production).
    """
    u = np.broadcast_to(np.asarray(insulin_pmol_kg_min, dtype=float), (p.n,))
    y = np.zeros((N_STATES, p.n))

    isc1 = u / (p.kd + p.ka1)
    isc2 = p.kd * isc1 / p.ka2
    ip = u / (p.m2 + p.m4 - p.m1 * p.m2 / (p.m1 + p.m30))
    il = p.m2 * ip / (p.m1 + p.m30)
    plasma_insulin = ip / p.Vi
    x = plasma_insulin - p.Ib

    def tissue(gp: np.ndarray) -> np.ndarray:
        # k2 Gt^2 + (A + k2 Km0 - k1 Gp) Gt - k1 Gp Km0 = 0, positive root.
        a = p.Vm0 + p.Vmx * x
        c = p.k1 * gp
        bq = a + p.k2 * p.Km0 - c
        return (-bq + np.sqrt(bq * bq + 4.0 * p.k2 * c * p.Km0)) / (2.0 * p.k2)

    def balance(gp: np.ndarray) -> np.ndarray:
        egp = np.maximum(p.kp1 - p.kp2 * gp - p.kp3 * plasma_insulin, 0.0)
        renal = p.ke1 * np.maximum(gp - p.ke2, 0.0)
        return egp - p.Fsnc - renal - p.k1 * gp + p.k2 * tissue(gp)

    low = np.zeros(p.n)
    high = np.full(p.n, 1e4)
    if np.any(balance(low + 1e-9) <= 0):
        bad = np.flatnonzero(balance(low + 1e-9) <= 0).tolist()
        raise ValueError(
            f"patients {bad} have no fasting steady state with positive glucose at "
            f"this insulin rate; expected production to exceed utilisation at zero "
            "glucose"
        )
    for _ in range(80):
        mid = 0.5 * (low + high)
        positive = balance(mid) > 0
        low = np.where(positive, mid, low)
        high = np.where(positive, high, mid)
    gp = 0.5 * (low + high)

    y[3] = gp
    y[4] = tissue(gp)
    y[5] = ip
    y[6] = x
    y[7] = plasma_insulin
    y[8] = plasma_insulin
    y[9] = il
    y[10] = isc1
    y[11] = isc2
    y[12] = gp
    return y
