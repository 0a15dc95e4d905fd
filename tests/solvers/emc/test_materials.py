"""Gabriel 1996 tissues against the published values quoted in REFERENCES.md."""

from __future__ import annotations

import pytest

from medtwin_ml.solvers.emc import material_properties
from medtwin_ml.solvers.emc._materials import wavelength_m

# (tissue, frequency, eps_r, sigma_s_per_m) from Gabriel et al. 1996 tabulations.
PUBLISHED = [
    ("muscle", 900e6, 55.0, 0.943),
    ("muscle", 2.45e9, 52.7, 1.74),
    ("skin_dry", 900e6, 41.4, 0.867),
    ("skin_dry", 2.45e9, 38.0, 1.46),
    ("fat", 900e6, 5.46, 0.051),
    ("fat", 2.45e9, 5.28, 0.105),
    ("bone_cortical", 900e6, 12.5, 0.143),
    ("bone_cortical", 2.45e9, 11.4, 0.394),
]


@pytest.mark.parametrize(("name", "f", "eps", "sigma"), PUBLISHED)
def test_cole_cole_matches_published_values(name, f, eps, sigma):
    # The published figures carry three significant digits: 1 % covers rounding.
    props = material_properties(name, f)
    assert props.eps_r == pytest.approx(eps, rel=0.01)
    assert props.sigma_s_per_m == pytest.approx(sigma, rel=0.01)
    assert props.density_kg_per_m3 > 900


def test_device_materials_and_unknown_names():
    assert material_properties("copper", 1e9).pec
    fr4 = material_properties("fr4", 1e9)
    assert fr4.eps_r == 4.4 and fr4.sigma_s_per_m > 0 and fr4.density_kg_per_m3 == 0
    with pytest.raises(ValueError, match="unknown material 'unobtanium'"):
        material_properties("unobtanium", 1e9)


def test_wavelength_in_lossless_medium():
    assert wavelength_m(4.0, 0.0, 1e9) == pytest.approx(0.299792458 / 2, rel=1e-12)
