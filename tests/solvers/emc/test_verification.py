"""The solver against exact answers: dispersion, CPML, TF/SF, Fresnel, order, Mie."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medtwin_ml.solvers.emc import _verify


@pytest.mark.parametrize("direction_deg", [0.0, 45.0])
def test_numerical_dispersion_follows_the_yee_relation(direction_deg):
    # At 10 cells per wavelength the Yee wavenumber along an axis lies 1 % above the
    # continuum; the measured one must sit on the Yee value, 30 times closer.
    k_meas, k_yee, k0 = _verify.point_source_wavenumber(10.0, direction_deg)
    assert abs(k_meas - k_yee) / k_yee < 3e-4
    if direction_deg == 0.0:
        assert (k_yee - k0) / k0 > 8e-3


def test_cpml_reflection_below_minus_40_db_normal_and_oblique():
    refl = _verify.cpml_reflection_db(cells=10)
    assert refl["normal"] < -40.0
    assert refl["oblique"] < -40.0


@pytest.mark.parametrize(
    ("mode", "direction_deg"), [("TMz", 0.0), ("TMz", 30.0), ("TEz", 60.0)]
)
def test_tfsf_leakage_below_minus_40_db(mode, direction_deg):
    assert _verify.tfsf_leakage_db(mode, direction_deg) < -40.0


def test_lossy_half_space_reflection_within_2_percent_of_fresnel():
    measured, fresnel = _verify.fresnel_reflection(eps_r=10.0, sigma_s_per_m=0.5)
    assert abs(fresnel) > 0.5  # a strong, complex reflection, not a trivial one
    assert abs(measured - fresnel) / abs(fresnel) < 0.02


def test_second_order_convergence_on_a_cavity_mode():
    _, errors = _verify.cavity_convergence((16, 32, 64))
    orders = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert all(abs(p - 2.0) < 0.15 for p in orders), orders


@pytest.mark.parametrize("sigma_s_per_m", [0.0, 0.3])
def test_mie_series_for_lossless_and_lossy_cylinders(sigma_s_per_m):
    # 40 cells per free-space wavelength, 20 in the eps_r = 4 cylinder.
    assert _verify.mie_error(sigma_s_per_m) < 0.05


def test_running_dft_gives_several_frequencies_from_one_pulse():
    # A line current's exact field, -(w mu0 / 4) I H0(2)(k r), at three frequencies
    # of one pulsed run; 30 cells per wavelength leave about 0.5 % of grid error.
    ratio = _verify.line_source_green((0.7e9, 1.0e9, 1.3e9), (20, 40))
    assert ratio.shape == (3, 2)
    assert np.abs(ratio - 1).max() < 0.02


def test_twin_verification_reports_passing_checks():
    from medtwin_ml.registry import get_twin

    checks = get_twin("emc").verification()
    names = {c.name for c in checks}
    assert {"tfsf_leakage_db", "fresnel_rel_error", "cavity_order"} <= names
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]
