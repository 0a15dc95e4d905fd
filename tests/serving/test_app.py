"""The what-if API against a real (linear) ONNX bundle, through FastAPI's TestClient."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from medtwin_ml.export.bundle import BundleError
from medtwin_ml.registry import get_twin
from medtwin_ml.solvers.diabetes.outcomes import glycaemic_outcomes
from medtwin_ml.twin import Case
from tests.serving.conftest import (
    HALF_WIDTH,
    KEY,
    MODEL,
    OUTPUTS,
    PARAMETERS,
    STEP_MIN,
    client_class,
    expected_outputs,
    patient,
    scenario,
)

PREDICT = f"/v1/models/{MODEL}/predict"
COMPARE = f"/v1/models/{MODEL}/compare"
# The graph runs in float32; outputs of a few hundred units agree with the float64
# NumPy reference to a few float32 ulps (1e-4 relative is ~1000 ulps of headroom).
RTOL = 1e-4


def _case(i: int = 0, duration_min: int = 360, **params) -> dict:
    return {
        "parameters": {**patient(i), **params},
        "device": {},
        "scenario": scenario(duration_min),
    }


def _expected(body_cases: list[dict], n_steps: int) -> np.ndarray:
    """The answer computed without the app: twin models, step means, the graph."""
    twin = get_twin("diabetes")
    cases = [
        Case(
            params=twin.parameters.model_validate(c["parameters"]),
            device=twin.device.model_validate(c["device"]),
            scenario=twin.scenario.model_validate(c["scenario"]),
        )
        for c in body_cases
    ]
    p = np.array([[getattr(c.params, n) for n in PARAMETERS] for c in cases])
    per_min = twin.exogenous_inputs(cases, n_steps * int(STEP_MIN))
    u = np.stack(
        [per_min["insulin_delivered_u"], per_min["carbs_eaten_g"]], axis=-1
    ).reshape(len(cases), n_steps, int(STEP_MIN), 2)
    return expected_outputs(p, u.mean(axis=2))


# ---------------------------------------------------------------------------
# Service routes and model list


def test_health_and_ready_need_no_key(client):
    client.headers.pop("Authorization")
    assert client.get("/health").json() == {"status": "ok"}
    r = client.get("/ready")
    assert r.status_code == 200 and r.json()["models"] == 1


def test_ready_is_503_without_a_model(tmp_path):
    from serving import ApiKeys, ServingSettings, create_app

    app = create_app(ServingSettings(bundles=tmp_path, api_keys=ApiKeys([KEY])))
    with client_class()(app) as c:
        assert c.get("/ready").status_code == 503


def test_models_lists_units_domain_and_metrics(client):
    r = client.get("/v1/models")
    assert r.status_code == 200
    (m,) = r.json()["models"]
    assert (m["name"], m["version"], m["twin"]) == (MODEL, "3", "diabetes")
    assert [o["name"] for o in m["outputs"]] == list(OUTPUTS)
    assert m["outputs"][0]["unit"] == "mg/dL"
    assert {p["name"]: p["unit"] for p in m["parameters"]}["BW"] == "kg"
    assert m["input_domain"]["horizon_steps"] == 144
    assert m["validation"]["held_out_patients"]["plasma_glucose_mg_dl.rmse"] == 4.2
    assert m["uncertainty"]["level"] == 0.9
    assert {"name": "time_in_range_pct", "unit": "%"}.items() <= m["outcomes"][
        0
    ].items()
    assert "korean_adult" in m["cohorts"]


# ---------------------------------------------------------------------------
# Authentication


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-key-0123456789abcdef", "Basic " + KEY, "Bearer ", KEY],
)
@pytest.mark.parametrize("method,path", [("get", "/v1/models"), ("post", PREDICT)])
def test_v1_routes_refuse_missing_or_wrong_keys(client, header, method, path):
    client.headers.pop("Authorization")
    headers = {"Authorization": header} if header is not None else {}
    kwargs = {"json": {"cases": [_case()]}} if method == "post" else {}
    r = getattr(client, method)(path, headers=headers, **kwargs)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


def test_keys_from_env_and_file_are_kept_as_hashes(tmp_path, monkeypatch):
    from serving import ApiKeys

    monkeypatch.setenv("MEDTWIN_API_KEYS", "env-key-0123456789abcdef, ")
    path = tmp_path / "keys"
    path.write_text("# ops keys\nfile-key-0123456789abcdef\n")
    keys = ApiKeys.load(path)
    assert len(keys) == 2
    assert keys.identify("env-key-0123456789abcdef") is not None
    assert keys.identify("file-key-0123456789abcdef") is not None
    assert keys.identify("file-key-0123456789abcdeX") is None
    assert keys.identify("env-key-0123456789abcdef") != keys.identify(
        "file-key-0123456789abcdef"
    )
    held = repr(vars(keys))
    assert "env-key" not in held and "file-key" not in held


def test_short_keys_are_refused():
    from medtwin_ml.errors import ConfigError
    from serving import ApiKeys

    with pytest.raises(ConfigError, match="key"):
        ApiKeys(["short"])


# ---------------------------------------------------------------------------
# Predict: explicit cases


def test_one_case_returns_the_graphs_answer_with_units_and_outcomes(client):
    body = {"cases": [_case()]}
    r = client.post(PREDICT, json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    n_steps = 36
    assert out["time"]["values"] == [STEP_MIN * k for k in range(n_steps + 1)]
    assert out["time"]["unit"] == "min"
    y = _expected(body["cases"], n_steps)[0]
    (case,) = out["cases"]
    for k, name in enumerate(OUTPUTS):
        np.testing.assert_allclose(case["trajectories"][name]["values"], y[:, k], RTOL)
    g = case["trajectories"]["plasma_glucose_mg_dl"]
    assert g["unit"] == "mg/dL"
    np.testing.assert_allclose(g["upper"], y[:, 0] + HALF_WIDTH, RTOL)
    np.testing.assert_allclose(g["lower"], y[:, 0] - HALF_WIDTH, RTOL)
    assert "lower" not in case["trajectories"]["plasma_insulin_pmol_l"]
    reference = glycaemic_outcomes(y[:, 0], STEP_MIN)
    for name, value in case["outcomes"].items():
        assert value == pytest.approx(float(reference[name]), rel=1e-4, abs=1e-6)
    assert out["outcome_units"]["time_in_range_pct"] == "%"
    assert case["in_domain"] is True and case["reasons"] == []
    assert out["uncertainty"]["method"] == "split_conformal"


def test_a_batch_is_one_onnxruntime_call_and_flags_cases_outside(client, app):
    model = app.state.store.get(MODEL)
    calls = []
    session = model.runner.session

    class Counting:
        def run(self, *args, **kwargs):
            calls.append(args[1]["p"].shape)
            return session.run(*args, **kwargs)

    model.runner.session = Counting()
    try:
        bw_max = model.runner.card.input_domain["parameters"]["BW"][1]
        body = {
            "cases": [_case(0), _case(1, BW=bw_max * 1.5), _case(2)],
            "horizon_min": 120,
        }
        r = client.post(PREDICT, json=body)
    finally:
        model.runner.session = session
    assert r.status_code == 200, r.text
    assert calls == [(3, len(PARAMETERS))]
    cases = r.json()["cases"]
    assert [c["in_domain"] for c in cases] == [True, False, True]
    assert "BW" in cases[1]["reasons"][0] and "outside" in cases[1]["reasons"][0]
    y = _expected(body["cases"], 12)
    for i, c in enumerate(cases):
        np.testing.assert_allclose(
            c["trajectories"]["plasma_glucose_mg_dl"]["values"], y[i, :, 0], RTOL
        )


def test_concurrent_requests_share_onnxruntime_calls_and_keep_their_answers(
    client, app
):
    model = app.state.store.get(MODEL)
    calls = []
    session = model.runner.session

    class Slow:
        def run(self, *args, **kwargs):
            calls.append(args[1]["p"].shape[0])
            time.sleep(0.05)  # long enough for the other requests to queue
            return session.run(*args, **kwargs)

    bodies = [{"cases": [_case(i % 10)], "horizon_min": 60 + 10 * i} for i in range(6)]
    bodies += [{"cases": [_case(i % 10)], "horizon_min": 120} for i in range(6, 12)]
    model.runner.session = Slow()
    try:
        with ThreadPoolExecutor(len(bodies)) as pool:
            answers = list(pool.map(lambda b: client.post(PREDICT, json=b), bodies))
    finally:
        model.runner.session = session
    assert [r.status_code for r in answers] == [200] * len(bodies)
    assert sum(calls) == len(bodies) and len(calls) < len(bodies)
    for body, r in zip(bodies, answers, strict=True):
        n_steps = int(body["horizon_min"] / STEP_MIN)
        (case,) = r.json()["cases"]
        y = _expected(body["cases"], n_steps)[0]
        np.testing.assert_allclose(
            case["trajectories"]["plasma_glucose_mg_dl"]["values"], y[:, 0], RTOL
        )


def test_horizon_beyond_training_is_out_of_domain(client):
    r = client.post(PREDICT, json={"cases": [_case(duration_min=2880)]})
    assert r.status_code == 200
    (case,) = r.json()["cases"]
    assert not case["in_domain"]
    assert any("horizon of 288 steps" in why for why in case["reasons"])


def test_cases_of_different_lengths_need_a_horizon(client):
    body = {"cases": [_case(duration_min=300), _case(duration_min=360)]}
    r = client.post(PREDICT, json=body)
    assert r.status_code == 422
    assert "horizon_min" in r.text
    r = client.post(PREDICT, json={**body, "horizon_min": 300})
    assert r.status_code == 200 and len(r.json()["time"]["values"]) == 31


def test_closed_loop_cases_get_a_clear_422(client):
    case = _case()
    case["device"] = {"controller": "pid"}
    r = client.post(PREDICT, json={"cases": [case]})
    assert r.status_code == 422
    assert "open-loop" in r.text or "closed loop" in r.text


# ---------------------------------------------------------------------------
# Predict: cohorts


def test_cohort_query_gives_percentiles_and_worst_cases(client, app):
    body = {
        "cohort": {"name": "korean_adult", "n": 60, "seed": 4},
        "design": {"basal_scale": 1.2, "lunch_carbs_g": 100},
        "options": {"duration_min": 720},
        "worst_k": 3,
    }
    r = client.post(PREDICT, json=body)
    assert r.status_code == 200, r.text
    cohort = r.json()["cohort"]
    assert cohort["design"]["basal_scale"] == 1.2
    assert cohort["design"]["dinner_carbs_g"] == 75.0  # middle of [30, 120]

    # The same cohort, built and run without the app.
    twin = get_twin("diabetes")
    import pandas as pd

    patients = twin.sample_cohort("korean_adult", 60, 4)
    cases = twin.cases_from_design(
        pd.DataFrame([cohort["design"]] * 60), patients, {"duration_min": 720}
    )
    body_cases = [
        {
            "parameters": c.params.model_dump(),
            "device": c.device.model_dump(),
            "scenario": c.scenario.model_dump(),
        }
        for c in cases
    ]
    y = _expected(body_cases, 72)
    tir = glycaemic_outcomes(y[:, :, 0], STEP_MIN)["time_in_range_pct"]

    dist = cohort["outcomes"]["time_in_range_pct"]
    assert dist["unit"] == "%"
    for q in (5, 25, 50, 75, 95):
        assert dist[f"p{q}"] == pytest.approx(np.percentile(tir, q), abs=1e-6)
    assert dist["p5"] <= dist["p50"] <= dist["p95"]
    worst = [w["index"] for w in cohort["worst"]]
    assert len(worst) == 3
    assert sorted(tir[worst]) == pytest.approx(sorted(tir)[:3])
    assert "lowest time_in_range_pct" in cohort["worst_rule"]
    assert cohort["worst"][0]["patient"].startswith("korean_adult")
    bands = cohort["trajectory_percentiles"]["plasma_glucose_mg_dl"]
    np.testing.assert_allclose(bands["p50"], np.median(y[:, :, 0], axis=0), RTOL)

    again = client.post(PREDICT, json=body).json()["cohort"]
    assert again["outcomes"] == cohort["outcomes"]


def test_cohort_of_1000_runs_in_chunks_on_the_bulk_threads(client, app):
    from medtwin_ml.export.runtime import CHUNK_ROWS

    model = app.state.store.get(MODEL)
    session = model.runner.session
    calls = []

    class Counting:
        def run(self, *args, **kwargs):
            calls.append((threading.current_thread().name, args[1]["u"].shape))
            return session.run(*args, **kwargs)

    model.runner.session = Counting()
    try:
        body = {"cohort": {"name": "korean_adult", "n": 1000, "seed": 1}}
        r = client.post(PREDICT, json={**body, "options": {"duration_min": 240}})
        with_chunks = r.json()
        # The same cohort in one call gives the same answer to the bit.
        y_chunks = model.runner.run(*_cohort_arrays(model, 1000, 24))
        model.runner.session = session
        y_whole = model.runner._call(*_cohort_arrays(model, 1000, 24))
    finally:
        model.runner.session = session
    assert r.status_code == 200, r.text
    # Every chunk has one shape: the last is filled up, and its copies dropped.
    chunks = calls[: -(-1000 // CHUNK_ROWS)]
    assert [shape for _, shape in chunks] == [(CHUNK_ROWS, 24, 2)] * len(chunks)
    # Both bulk threads took chunks (the app's default is two).
    assert {name for name, _ in chunks} == {
        f"bulk-{MODEL}_0",
        f"bulk-{MODEL}_1",
    }
    np.testing.assert_array_equal(y_chunks, y_whole)
    assert with_chunks["cohort"]["n_in_domain"] <= 1000


def _cohort_arrays(model, n: int, n_steps: int):
    twin = model.runner.twin
    row = {v.name: 0.5 * (v.low + v.high) for v in twin.input_domain.variables}
    patients = twin.sample_cohort("korean_adult", n, 1)
    cases = twin.cases_from_design(
        pd.DataFrame([row] * n), patients, {"duration_min": 10 * n_steps}
    )
    return model.runner.parameters(cases), model.runner.controls(cases, n_steps)


def test_one_bulk_thread_runs_the_chunks_in_the_calling_thread(bundle_root):
    from medtwin_ml.export.runtime import CHUNK_ROWS, SurrogateRunner

    runner = SurrogateRunner(bundle_root / "linear", threads=1, bulk_threads=1)
    session = runner.session
    used = []

    class Tagged:
        def run(self, *args, **kwargs):
            used.append((threading.current_thread().name, args[1]["p"].shape[0]))
            return session.run(*args, **kwargs)

    runner.session = Tagged()
    n_p, n_u = len(runner.card.parameters), len(runner.card.controls)
    rng = np.random.default_rng(0)
    p = rng.uniform(0.5, 2, (CHUNK_ROWS + 1, n_p)).astype(np.float32)
    u = rng.uniform(0, 2, (CHUNK_ROWS + 1, 3, n_u)).astype(np.float32)
    y = runner.run(p, u)
    runner.run(p[:1], u[:1])
    me = threading.current_thread().name
    assert used == [(me, CHUNK_ROWS), (me, CHUNK_ROWS), (me, 1)]
    # The filled-up chunk's copies are dropped: each case's own rows, to the bit.
    assert y.shape[0] == CHUNK_ROWS + 1
    np.testing.assert_array_equal(y, session.run(None, {"p": p, "u": u})[0])
    runner.close()


@pytest.mark.parametrize(
    "body,where",
    [
        ({"cohort": {"name": "martian_adult", "n": 5}}, "cohort"),
        (
            {"cohort": {"name": "korean_adult", "n": 5}, "design": {"bogus": 1}},
            "design",
        ),
        (
            {"cohort": {"name": "korean_adult", "n": 5}, "options": {"colour": "red"}},
            "colour",
        ),
        ({"cohort": {"name": "korean_adult", "n": 0}}, "n"),
        ({"cohort": {"name": "korean_adult", "n": 5}, "cases": [_case()]}, "body"),
        ({}, "body"),
    ],
)
def test_bad_cohort_queries_get_422(client, body, where):
    r = client.post(PREDICT, json=body)
    assert r.status_code == 422
    assert where in json.dumps(r.json()["detail"])


def test_design_outside_the_domain_is_flagged(client):
    body = {
        "cohort": {"name": "korean_adult", "n": 5, "seed": 0},
        "design": {"basal_scale": 2.0},
        "options": {"duration_min": 120},
    }
    r = client.post(PREDICT, json=body)
    assert r.status_code == 200
    cohort = r.json()["cohort"]
    assert cohort["n_in_domain"] == 0
    assert "basal_scale" in cohort["out_of_domain_examples"][0]["reasons"][0]


# ---------------------------------------------------------------------------
# Compare


def test_compare_returns_both_answers_and_their_errors(client):
    body = {"cases": [_case(0, 240), _case(3, 240)]}
    r = client.post(COMPARE, json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    twin = get_twin("diabetes")
    cases = [
        Case(
            params=twin.parameters.model_validate(c["parameters"]),
            device=twin.device.model_validate(c["device"]),
            scenario=twin.scenario.model_validate(c["scenario"]),
        )
        for c in body["cases"]
    ]
    solver = twin.simulate_batch(cases).outputs["plasma_glucose_mg_dl"][:, ::10]
    y = _expected(body["cases"], 24)
    for i, case in enumerate(out["cases"]):
        np.testing.assert_allclose(
            case["solver"]["plasma_glucose_mg_dl"]["values"], solver[i], rtol=1e-9
        )
        np.testing.assert_allclose(
            case["surrogate"]["plasma_glucose_mg_dl"]["values"], y[i, :, 0], RTOL
        )
        assert case["max_abs_error"]["plasma_glucose_mg_dl"] == pytest.approx(
            np.max(np.abs(y[i, :, 0] - solver[i])), rel=1e-4
        )
    rmse = np.sqrt(np.mean((y[:, :, 0] - solver) ** 2))
    assert out["errors"]["plasma_glucose_mg_dl"]["rmse"] == pytest.approx(rmse, 1e-4)
    assert "time_in_range_pct" in out["errors"]
    assert out["solver_seconds"] > 0 and out["surrogate_seconds"] > 0


def test_compare_is_bounded(client):
    r = client.post(COMPARE, json={"cases": [_case(i, 60) for i in range(5)]})
    assert r.status_code == 422
    assert "at most 4" in r.text


# ---------------------------------------------------------------------------
# Bad input, size limits, crashes


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("where", ["parameters", "horizon", "design"])
def test_non_finite_numbers_get_422_without_echo(client, token, where):
    case = _case()
    if where == "parameters":
        case["parameters"]["Gb"] = "@@"
        text = json.dumps({"cases": [case]}).replace('"@@"', token)
    elif where == "horizon":
        text = json.dumps({"cases": [case], "horizon_min": "@@"}).replace('"@@"', token)
    else:
        body = {"cohort": {"name": "korean_adult", "n": 3}, "design": {"x": "@@"}}
        text = json.dumps(body).replace('"@@"', token)
    r = client.post(PREDICT, content=text, headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert "Traceback" not in r.text
    assert str(case["parameters"]["BW"]) not in r.text
    assert len(r.text) < 2000


@pytest.mark.parametrize(
    "mutate,where",
    [
        (lambda b: b.update(surprise=1), "surprise"),
        (lambda b: b["cases"][0].update(notes="x"), "notes"),
        (lambda b: b["cases"][0]["parameters"].update(shoe_size=44), "shoe_size"),
        (lambda b: b["cases"][0]["scenario"].update(weather="rain"), "weather"),
        (lambda b: b["cases"][0]["parameters"].pop("Gb"), "Gb"),
        (lambda b: b["cases"][0]["parameters"].update(BW=-70), "BW"),
        (lambda b: b.update(cases="all of them"), "cases"),
    ],
)
def test_out_of_schema_input_gets_422_naming_the_field(client, mutate, where):
    body = {"cases": [_case()]}
    mutate(body)
    r = client.post(PREDICT, json=body)
    assert r.status_code == 422
    assert where in json.dumps(r.json()["detail"])
    assert str(patient()["kabs"]) not in r.text


def test_unknown_model_is_404(client):
    r = client.post("/v1/models/nope/predict", json={"cases": [_case()]})
    assert r.status_code == 404


def test_large_bodies_get_413(client):
    big = {"cases": [_case()], "pad": "x" * 300_000}
    r = client.post(PREDICT, json=big)
    assert r.status_code == 413

    def chunks():
        yield b'{"cases": ['
        for _ in range(400):
            yield json.dumps(_case()).encode() + b","
        yield json.dumps(_case()).encode() + b"]}"

    r = client.post(
        PREDICT, content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.status_code == 413


def test_a_crash_reaches_the_client_as_a_bare_500(client, app, caplog):
    model = app.state.store.get(MODEL)
    session = model.runner.session

    class Broken:
        def run(self, *args, **kwargs):
            raise RuntimeError("secret internals at /opt/model")

    model.runner.session = Broken()
    try:
        with caplog.at_level(logging.ERROR, logger="serving.app"):
            r = client.post(PREDICT, json={"cases": [_case()]})
    finally:
        model.runner.session = session
    assert r.status_code == 500
    assert r.json() == {"detail": "internal error"}
    assert "secret internals" in caplog.text


def test_one_audit_line_per_request_without_patient_values(client, caplog):
    case = _case()
    with caplog.at_level(logging.INFO, logger="serving.audit"):
        client.post(PREDICT, json={"cases": [case, case]})
        client.get("/v1/models", headers={"Authorization": "Bearer nope"})
    lines = [
        json.loads(r.getMessage()) for r in caplog.records if r.name == "serving.audit"
    ]
    assert len(lines) == 2
    ok, refused = lines
    assert ok["route"] == "/v1/models/{name}/predict"
    assert (ok["model"], ok["model_version"], ok["cases"], ok["status"]) == (
        MODEL,
        "3",
        2,
        200,
    )
    assert len(ok["key_id"]) == 8 and ok["latency_ms"] > 0 and "T" in ok["time"]
    assert refused["status"] == 401 and refused["key_id"] is None
    text = caplog.text
    for value in (case["parameters"]["BW"], case["parameters"]["kabs"], KEY):
        assert str(value) not in text


# ---------------------------------------------------------------------------
# Start-up and the OpenAPI document


def test_a_tampered_bundle_is_refused_at_startup(tampered_root):
    from serving import ApiKeys, ServingSettings, create_app

    with pytest.raises(BundleError, match="sha256"):
        create_app(ServingSettings(bundles=tampered_root, api_keys=ApiKeys([KEY])))


def test_a_bundle_with_rewritten_sums_is_still_refused(tampered_root):
    from medtwin_ml._io import sha256_file
    from serving import ApiKeys, ServingSettings, create_app

    bundle = tampered_root / "linear"
    sums = "".join(
        f"{sha256_file(bundle / n)}  {n}\n" for n in ("model.onnx", "card.json")
    )
    (bundle / "SHA256SUMS").write_text(sums)
    with pytest.raises(BundleError, match="sha256"):
        create_app(ServingSettings(bundles=tampered_root, api_keys=ApiKeys([KEY])))


def test_serve_command_refuses_a_tampered_bundle(tampered_root):
    from typer.testing import CliRunner

    from medtwin_ml.cli import app as cli

    result = CliRunner().invoke(cli, ["serve", "--bundles", str(tampered_root)])
    assert result.exit_code == 2
    assert "sha256" in result.output


def test_every_request_body_carries_a_working_example(client):
    schema = client.get("/openapi.json").json()
    for path in (PREDICT, COMPARE):
        op = schema["paths"][path.replace(MODEL, "{name}")]["post"]
        examples = op["requestBody"]["content"]["application/json"]["examples"]
        assert set(examples) == {"case", "cohort"}
        for example in examples.values():
            r = client.post(path, json=example["value"])
            assert r.status_code == 200, (path, r.text[:300])
    assert client.get("/docs").status_code == 200
    assert "bearer" in json.dumps(schema["components"]["securitySchemes"]).lower()


_NO_TORCH_PROBE = """
import sys, warnings
warnings.simplefilter("ignore")
from fastapi.testclient import TestClient
from serving import ApiKeys, ServingSettings, create_app
root, key, model = sys.argv[1:4]
app = create_app(ServingSettings(bundles=root, api_keys=ApiKeys([key])))
h = {"Authorization": "Bearer " + key}
body = {"cohort": {"name": "korean_adult", "n": 4}, "options": {"duration_min": 60}}
with TestClient(app) as c:
    assert c.get("/v1/models", headers=h).status_code == 200
    for route in ("predict", "compare"):
        r = c.post(f"/v1/models/{model}/{route}", json=body, headers=h)
        assert r.status_code == 200, r.text
    assert c.get("/openapi.json").status_code == 200
heavy = ("torch", "lightning", "mlflow")
print(",".join(m for m in sys.modules if m.split(".")[0] in heavy))
"""


def test_no_torch_after_importing_and_exercising_the_app(bundle_root):
    out = subprocess.run(
        [sys.executable, "-c", _NO_TORCH_PROBE, str(bundle_root), KEY, MODEL],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == ""


def test_the_cards_validity_detector_flags_unusual_cases(bundle_root, tmp_path):
    import pandas as pd

    from medtwin_ml.export.bundle import update_card
    from medtwin_ml.export.runtime import SurrogateRunner
    from medtwin_ml.validation.domain import (
        ValidityDetector,
        case_features,
        feature_names,
    )
    from serving import ApiKeys, ServingSettings, create_app

    root = tmp_path / "with_detector"
    shutil.copytree(bundle_root, root)
    runner = SurrogateRunner(root / "linear")
    twin = runner.twin
    design = twin.input_domain.sample(200, seed=3)
    cases = twin.cases_from_design(
        design, twin.sample_cohort("korean_adult", 200, 0), {"duration_min": 360}
    )
    p, u = runner.parameters(cases), runner.controls(cases, 36)
    names = feature_names(PARAMETERS, [s.name for s in runner.card.controls])
    detector = ValidityDetector.fit(case_features(p, u, STEP_MIN), names)
    update_card(root / "linear", validity=detector.to_dict())

    app = create_app(ServingSettings(bundles=root, api_keys=ApiKeys([KEY])))
    usual = {
        "parameters": cases[0].params.model_dump(mode="json", exclude_none=True),
        "device": {},
        "scenario": cases[0].scenario.model_dump(mode="json", exclude_none=True),
    }
    # The same patient eating three times the domain's largest meal, unbolused.
    unusual = json.loads(json.dumps(usual))
    unusual["scenario"]["meals"] = [{"time_min": 30, "carbs_g": 360}]
    unusual["scenario"]["boluses"] = []
    with client_class()(app) as c:
        r = c.post(
            PREDICT,
            json={"cases": [usual, unusual]},
            headers={"Authorization": f"Bearer {KEY}"},
        )
        listed = c.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200, r.text
    first, second = r.json()["cases"]
    assert listed.json()["models"][0]["validity_detector"] is True
    assert first["in_domain"] is True
    assert second["in_domain"] is False and second["reasons"]
    assert pd.notna(second["outcomes"]["time_in_range_pct"])
