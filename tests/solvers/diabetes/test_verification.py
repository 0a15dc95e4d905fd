"""Verification: steady state, tolerance convergence, mass balance, path agreement."""

from __future__ import annotations

import numpy as np
import pytest

from medtwin_ml.cohorts.diabetes import sample_cohort
from medtwin_ml.solvers.diabetes import (
    INPUT_DOMAIN,
    TWIN,
    Bolus,
    DiabetesDevice,
    DiabetesScenario,
    Meal,
    carb_appearance_fraction,
    cases_from_design,
    run_batch,
    tolerance_errors,
)
from medtwin_ml.twin import Case


def test_every_shipped_patient_holds_gb_for_24h_at_basal(all_patients):
    # Started from the steady state computed from the equations at u2ss, glucose must
    # sit at the table's Gb: 0.5 mg/dL is the bound on drift.
    assert len(all_patients) == 30
    scenario = DiabetesScenario(duration_min=1440)
    cases = [Case(p, DiabetesDevice(), scenario) for p in all_patients]
    g = run_batch(cases, method="reference").outputs["plasma_glucose_mg_dl"]
    gb = np.array([p.Gb for p in all_patients])[:, None]
    drift = np.abs(g - gb).max(axis=1)
    assert drift.max() < 0.5, dict(
        zip([p.Name for p in all_patients], drift, strict=True)
    )


def test_reference_converges_under_tolerance_refinement(adults):
    # Errors against rtol 1e-12 must fall as the tolerance tightens, by at least 10x
    # per 100x of tolerance (an 8th-order method gains more), and end below 1e-3.
    errors = tolerance_errors(adults[0], rtols=(1e-5, 1e-7, 1e-9))
    assert errors[0] > 10 * errors[1] > 0
    assert errors[1] > 10 * errors[2]
    assert errors[2] < 1e-3


@pytest.mark.parametrize("carbs_g", [10.0, 50.0, 120.0])
def test_carb_appearance_integrates_to_f_times_eaten(adults, carbs_g):
    # After 24 h the gut holds < e^-11 of the meal; quadrature at rtol 1e-11.
    for patient in adults[:3]:
        fraction = carb_appearance_fraction(patient, carbs_g)
        assert fraction == pytest.approx(patient.f, abs=1e-6)


def _meal_cases(patients):
    scenario = DiabetesScenario(
        duration_min=600,
        meals=[Meal(time_min=30, carbs_g=60)],
        boluses=[Bolus(time_min=30, units=4)],
    )
    return [Case(p, DiabetesDevice(), scenario) for p in patients]


def test_rk4_converges_to_the_reference(adults):
    # Classical RK4 gains 16x per halving of the step on smooth problems. The
    # max(., 0) kinks of liver production and of renal excretion (crossed here: the
    # meal takes glucose above the renal threshold) leave a low-order error at each
    # crossing, measured at about 6e-6 mg/dL, so the test asks for 5x from one to two
    # steps a minute, no growth after, and 1e-3 mg/dL at the default two steps.
    cases = _meal_cases(adults[:4])
    ref = run_batch(cases, method="reference").outputs["plasma_glucose_mg_dl"]
    errors = []
    for substeps in (1, 2, 4):
        g = run_batch(cases, substeps=substeps).outputs["plasma_glucose_mg_dl"]
        errors.append(np.abs(g - ref).max())
    assert errors[0] > 5 * errors[1]
    assert errors[2] <= errors[1] < 1e-3


def test_batched_and_reference_agree_on_100_patients_over_24h():
    patients = (
        sample_cohort("adult", 34, seed=1)
        + sample_cohort("adolescent", 33, seed=2)
        + sample_cohort("child", 33, seed=3)
    )
    cases = cases_from_design(INPUT_DOMAIN.sample(100, seed=5), patients)
    ref = run_batch(cases, method="reference")
    fast = TWIN.simulate_batch(cases)
    for name in ("plasma_glucose_mg_dl", "subcutaneous_glucose_mg_dl"):
        gap = np.abs(ref.outputs[name] - fast.outputs[name]).max()
        assert gap < 0.1, (name, gap)
    assert ref.outputs["plasma_glucose_mg_dl"].shape == (100, 1441)


def test_batched_closed_loop_matches_the_reference_closed_loop(adults):
    scenario = DiabetesScenario(duration_min=300, meals=[Meal(time_min=60, carbs_g=60)])
    device = DiabetesDevice(controller="basal_bolus", cgm=True, seed=3)
    cases = [Case(p, device, scenario) for p in adults[:2]]
    ref = run_batch(cases, method="reference")
    fast = run_batch(cases)
    gap = np.abs(
        ref.outputs["plasma_glucose_mg_dl"] - fast.outputs["plasma_glucose_mg_dl"]
    ).max()
    assert gap < 0.1
    np.testing.assert_allclose(
        ref.outputs["insulin_delivered_u"], fast.outputs["insulin_delivered_u"]
    )


def test_case_alone_or_in_a_batch_gives_the_same_numbers(adults):
    cases = _meal_cases(adults[:3])
    together = run_batch(cases).outputs["plasma_glucose_mg_dl"]
    alone = run_batch(cases[1:2]).outputs["plasma_glucose_mg_dl"]
    np.testing.assert_array_equal(together[1], alone[0])


def test_twin_verification_passes():
    checks = TWIN.verification()
    assert {c.name for c in checks} == {
        "basal_drift_mg_dl",
        "tolerance_convergence_mg_dl",
        "carb_appearance_fraction",
    }
    for check in checks:
        assert check.passed, check
        assert check.measured < check.tolerance
