from __future__ import annotations

import pytest

from medtwin_ml.cohorts.diabetes import published_patients


@pytest.fixture(scope="session")
def adults():
    return published_patients("adult")


@pytest.fixture(scope="session")
def all_patients():
    return [p for g in ("adult", "adolescent", "child") for p in published_patients(g)]
