from __future__ import annotations

import pandas as pd
import pytest

from medtwin_ml.config import BoundaryModel
from medtwin_ml.errors import UnknownTwinError
from medtwin_ml.registry import get_twin, register, twin_names
from medtwin_ml.twin import (
    DomainVariable,
    InputDomain,
    Quantity,
    TimeSeriesResult,
    TwinSpec,
)


class _P(BoundaryModel):
    k_per_min: float = 0.1


class _D(BoundaryModel):
    pass


class _S(BoundaryModel):
    duration_min: float = 3


def _decay(case):
    t = pd.RangeIndex(int(case.scenario.duration_min) + 1)
    return TimeSeriesResult(pd.DataFrame({"time_min": t, "x": 0.9**t}))


DOMAIN = InputDomain(
    variables=[
        DomainVariable(name="k_per_min", unit="1/min", low=0.01, high=1.0),
        DomainVariable(name="duration_min", unit="min", low=1, high=10),
    ]
)


def _spec(name="toy_decay"):
    return TwinSpec(
        name=name,
        title="exponential decay",
        output_kind="timeseries",
        parameters=_P,
        device=_D,
        scenario=_S,
        outputs=(Quantity("x", "1"),),
        input_domain=DOMAIN,
        solver_version="1",
        simulate=_decay,
    )


def test_unknown_twin_lists_the_known_ones():
    with pytest.raises(UnknownTwinError) as info:
        get_twin("no_such_twin")
    assert "registered twins" in str(info.value)


def test_register_and_describe(monkeypatch):
    import medtwin_ml.registry as reg

    monkeypatch.setattr(reg, "_loaded", dict(reg._loaded))
    spec = register(_spec())
    assert get_twin("toy_decay") is spec
    assert "toy_decay" in twin_names()
    described = spec.describe()
    assert described["outputs"] == [{"name": "x", "unit": "1", "description": ""}]
    assert spec.suffix == ".csv"
    with pytest.raises(ValueError, match="already registered"):
        register(_spec())


def test_domain_outside_reports_reasons():
    assert DOMAIN.outside({"k_per_min": 0.5, "duration_min": 2}) == []
    reasons = DOMAIN.outside({"k_per_min": 2.0, "duration_min": float("nan")})
    assert reasons[0] == "k_per_min = 2 1/min outside [0.01, 1]"
    assert "not finite" in reasons[1]


@pytest.mark.parametrize("method", ["sobol", "lhs", "random"])
def test_domain_sample_is_seeded_and_inside(method):
    a = DOMAIN.sample(37, seed=3, method=method)
    b = DOMAIN.sample(37, seed=3, method=method)
    c = DOMAIN.sample(37, seed=4, method=method)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    assert list(a.columns) == ["k_per_min", "duration_min"]
    for row in a.to_dict("records"):
        assert DOMAIN.outside(row) == []


def test_bounds_out_of_order_are_refused():
    with pytest.raises(ValueError, match="out of order"):
        DomainVariable(name="x", unit="1", low=2, high=1)
