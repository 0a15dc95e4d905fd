"""The short way for small predicts: same bytes as the FastAPI route, and only ever
a 200; everything else reaches the app."""

from __future__ import annotations

import json

import pytest

from serving.fast_predict import FastPredict
from tests.serving.conftest import KEY, MODEL, patient, scenario

PREDICT = f"/v1/models/{MODEL}/predict"


def _fast(app) -> FastPredict:
    layer = app.middleware_stack
    while not isinstance(layer, FastPredict):
        layer = layer.app
    return layer


def _body(n: int = 1, **extra) -> dict:
    cases = [
        {"parameters": patient(i), "device": {}, "scenario": scenario(240)}
        for i in range(n)
    ]
    return {"cases": cases, **extra}


@pytest.mark.parametrize(
    "body",
    [
        _body(1),
        _body(8),
        _body(2, include_trajectories=False),
        _body(3, horizon_min=120),
    ],
    ids=["one", "eight", "no-trajectories", "horizon"],
)
def test_the_short_way_answers_as_the_route_does(client, app, body):
    raw = json.dumps(body).encode()
    fast = _fast(app)
    before = fast.answered
    short = client.post(
        PREDICT, content=raw, headers={"Content-Type": "application/json"}
    )
    assert fast.answered == before + 1
    # FastAPI reads any "+json" type as JSON; the short way steps aside for it.
    routed = client.post(
        PREDICT, content=raw, headers={"Content-Type": "application/test+json"}
    )
    assert fast.answered == before + 1
    assert short.status_code == routed.status_code == 200
    assert short.content == routed.content
    assert short.headers["content-type"] == routed.headers["content-type"]
    assert short.headers["content-length"] == routed.headers["content-length"]


@pytest.mark.parametrize(
    "headers,path,body,status",
    [
        ({"Authorization": ""}, PREDICT, _body(), 401),
        ({"Authorization": "Bearer wrong-key-0123456789"}, PREDICT, _body(), 401),
        ({"Authorization": f"Basic {KEY}"}, PREDICT, _body(), 401),
        ({}, "/v1/models/nope/predict", _body(), 404),
        ({}, PREDICT, {**_body(), "extra": 1}, 422),
        ({}, PREDICT, {"cases": []}, 422),
        ({}, PREDICT, _body(1, horizon_min=1e6), 422),
        # Valid for the schema, refused by the twin's own model of a patient.
        (
            {},
            PREDICT,
            {"cases": [{**_body()["cases"][0], "parameters": {"BW": -3}}]},
            422,
        ),
    ],
    ids=[
        "no-key",
        "wrong-key",
        "not-bearer",
        "unknown-model",
        "unknown-field",
        "no-cases",
        "horizon",
        "twin-refuses",
    ],
)
def test_what_is_not_well_formed_gets_the_apps_answer(
    client, app, headers, path, body, status
):
    fast = _fast(app)
    before = fast.answered
    r = client.post(path, json=body, headers=headers)
    assert r.status_code == status, r.text
    assert fast.answered == before
    assert "detail" in r.json()


def test_non_finite_numbers_get_the_apps_422(client, app):
    fast = _fast(app)
    before = fast.answered
    raw = json.dumps(_body()).replace('"duration_min": 240', '"duration_min": NaN')
    r = client.post(
        PREDICT, content=raw.encode(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422
    assert fast.answered == before


def test_cohorts_and_larger_batches_go_to_the_route(client, app):
    fast = _fast(app)
    before = fast.answered
    assert client.post(PREDICT, json=_body(9)).status_code == 200
    cohort = {"cohort": {"name": "korean_adult", "n": 3, "seed": 1}}
    assert client.post(PREDICT, json=cohort).status_code == 200
    assert fast.answered == before
