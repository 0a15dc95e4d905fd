"""The what-if API: FastAPI over onnxruntime.

Routes::

    GET  /health                        liveness, no auth
    GET  /ready                         200 once at least one model is loaded, else 503
    GET  /v1/models                     the loaded surrogates (bearer key)
    POST /v1/models/{name}/predict      cases or a cohort through the surrogate
    POST /v1/models/{name}/compare      the same through surrogate and full solver

Errors never carry a traceback: 401 (no or wrong key), 404 (unknown model), 413 (body
too large), 422 (invalid body, non-finite numbers, input the twin refuses; the message
names the field, never echoes the whole input), 500 (logged here, a bare message
there).
"""

# No ``from __future__ import annotations`` here: FastAPI reads the annotations of the
# route functions, whose dependencies are local to create_app.
import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from medtwin_ml._version import __version__
from medtwin_ml.errors import ConfigError
from serving import inference
from serving.fast_predict import FastPredict
from serving.middleware import BodyLimitAndAudit
from serving.schemas import (
    CompareResponse,
    ErrorResponse,
    ModelList,
    PredictRequest,
    PredictResponse,
)
from serving.security import ApiKeys
from serving.store import LoadedModel, ModelStore

__all__ = [
    "SETTINGS_ENV",
    "ServingSettings",
    "create_app",
    "create_app_from_env",
    "settle_heap",
]

# How ``medtwin serve --workers N`` hands its settings to each worker process.
SETTINGS_ENV = "MEDTWIN_SERVE_SETTINGS"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingSettings:
    """How a server is set up.

    Attributes:
        bundles: folder of bundles, each a subfolder.
        api_keys: the accepted keys; default ``$MEDTWIN_API_KEYS`` (and no file).
        max_body_bytes: larger bodies get 413.
        threads: onnxruntime intra-op threads per model.
        max_compare_cases: cases per ``/compare`` request at most.
        batch_rows: most cases that concurrent small requests (8 cases or fewer
            each) share in one onnxruntime call (see :mod:`serving.batcher`);
            larger requests and cohort queries run on their own in the thread pool,
            in chunks that ``bulk_threads`` threads share.
        api_keys_file: where ``api_keys`` came from besides the environment, so
            that worker processes can load the same keys (see :meth:`to_env`).
        bulk_threads: threads that share the chunks of a cohort or other large
            batch (see :meth:`~medtwin_ml.export.runtime.SurrogateRunner.run`).
    """

    bundles: Path
    api_keys: ApiKeys | None = None
    max_body_bytes: int = 1_000_000
    threads: int = 1
    max_compare_cases: int = 50
    batch_rows: int = 64
    api_keys_file: Path | None = None
    bulk_threads: int = 2

    def to_env(self) -> str:
        """The settings as JSON for :data:`SETTINGS_ENV`. Keys never travel: each
        process loads them from ``$MEDTWIN_API_KEYS`` and ``api_keys_file``."""
        return json.dumps(
            {
                "bundles": str(self.bundles),
                "max_body_bytes": self.max_body_bytes,
                "threads": self.threads,
                "max_compare_cases": self.max_compare_cases,
                "batch_rows": self.batch_rows,
                "api_keys_file": str(self.api_keys_file or "") or None,
                "bulk_threads": self.bulk_threads,
            }
        )

    @classmethod
    def from_env(cls) -> "ServingSettings":
        """The settings a parent process put in :data:`SETTINGS_ENV`."""
        raw = os.environ.get(SETTINGS_ENV)
        if not raw:
            raise ConfigError("environment", [(SETTINGS_ENV, "(unset)", "JSON")])
        data = json.loads(raw)
        keys_file = Path(data["api_keys_file"]) if data.get("api_keys_file") else None
        return cls(
            bundles=Path(data["bundles"]),
            api_keys=ApiKeys.load(keys_file),
            max_body_bytes=int(data["max_body_bytes"]),
            threads=int(data["threads"]),
            max_compare_cases=int(data["max_compare_cases"]),
            batch_rows=int(data["batch_rows"]),
            api_keys_file=keys_file,
            bulk_threads=int(data["bulk_threads"]),
        )

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1024:
            raise ConfigError(
                "serving settings",
                [("max_body_bytes", self.max_body_bytes, "at least 1024")],
            )
        if not 1 <= self.threads <= (os.cpu_count() or 1) * 4:
            raise ConfigError(
                "serving settings", [("threads", self.threads, "1 or more")]
            )
        if self.max_compare_cases < 1:
            raise ConfigError(
                "serving settings",
                [("max_compare_cases", self.max_compare_cases, "1 or more")],
            )
        if not 1 <= self.bulk_threads <= (os.cpu_count() or 1) * 4:
            raise ConfigError(
                "serving settings", [("bulk_threads", self.bulk_threads, "1 or more")]
            )
        if self.batch_rows < 1:
            raise ConfigError(
                "serving settings", [("batch_rows", self.batch_rows, "1 or more")]
            )


_ERRORS = {
    401: {"model": ErrorResponse, "description": "Missing or wrong bearer key."},
    404: {"model": ErrorResponse, "description": "No model of that name."},
    413: {"model": ErrorResponse, "description": "Body too large."},
    422: {"model": ErrorResponse, "description": "Invalid input."},
}


def create_app(settings: ServingSettings) -> FastAPI:
    """Load and verify every bundle, then build the app.

    Raises:
        BundleError: a bundle is refused (see :class:`serving.store.ModelStore`).
    """
    store = ModelStore(
        settings.bundles,
        threads=settings.threads,
        batch_rows=settings.batch_rows,
        bulk_threads=settings.bulk_threads,
    )
    keys = settings.api_keys if settings.api_keys is not None else ApiKeys.load()
    if not len(keys):
        logger.warning("no API key configured: every /v1 request will get 401")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()

    app = FastAPI(
        lifespan=lifespan,
        title="medtwin what-if API",
        version=__version__,
        description=(
            "Fast what-if answers from verified surrogates of the medtwin twins. "
            "Every /v1 route needs `Authorization: Bearer <key>`."
        ),
    )
    app.state.store = store
    _install_error_handlers(app)
    _add_routes(app, store, keys, settings)
    _add_examples(app, store, settings.max_compare_cases)
    # Inside the body limit and the audit line, in front of FastAPI.
    predict = next(r for r in app.routes if getattr(r, "path", "") == _PREDICT)
    app.add_middleware(
        FastPredict, store=store, keys=keys, inline_cases=_INLINE_CASES, route=predict
    )
    app.add_middleware(BodyLimitAndAudit, max_body_bytes=settings.max_body_bytes)
    return app


def create_app_from_env() -> FastAPI:
    """The app of one worker of ``medtwin serve --workers N`` (a uvicorn factory):
    settings from :data:`SETTINGS_ENV`, audit lines on standard error."""
    from serving.middleware import log_audit_to_stderr

    log_audit_to_stderr()
    app = create_app(ServingSettings.from_env())
    settle_heap(app)
    return app


def settle_heap(app: FastAPI) -> None:
    """Build what is built lazily, then move every object alive so far out of the
    garbage collector's sight. The process holds about 10^5 long-lived objects
    (imports, models, the OpenAPI document); a full collection over them costs tens
    of milliseconds, and whichever requests are in flight when one runs would wait
    for it. Call once a server is set up, before it answers."""
    import gc

    app.openapi()
    gc.collect()
    gc.freeze()


# ---------------------------------------------------------------------------
# Errors


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input, and fails on NaN inside it.
        problems = []
        for err in exc.errors()[:20]:
            loc = [str(part) for part in err.get("loc", ())]
            problems.append(
                {"loc": loc, "msg": str(err.get("msg", "")), "type": err.get("type")}
            )
        return JSONResponse(status_code=422, content={"detail": problems})

    @app.exception_handler(ConfigError)
    async def _refused(request: Request, exc: ConfigError) -> JSONResponse:
        # The twin's models judged the input: name where, say what was expected,
        # and leave the value out (it may be a patient's).
        where = ["body"] if exc.source == "request body" else exc.source.split(".")
        problems = [
            {
                "loc": [*where, *key.split(".")],
                "msg": f"expected {expected}",
                "type": "value_error",
            }
            for key, _, expected in exc.problems[:20]
        ]
        return JSONResponse(status_code=422, content={"detail": problems})

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s", request.url.path)
        return JSONResponse(status_code=500, content={"detail": "internal error"})


# ---------------------------------------------------------------------------
# Routes

_bearer = HTTPBearer(auto_error=False, description="An API key of this server.")

# Requests with at most this many explicit cases are prepared on the event loop and
# share onnxruntime calls (see serving.fast_predict too); larger ones, and cohorts,
# run in the thread pool.
_INLINE_CASES = 8
_PREDICT = "/v1/models/{name}/predict"


def _add_routes(
    app: FastAPI, store: ModelStore, keys: ApiKeys, settings: ServingSettings
) -> None:
    # Dependencies and light routes are coroutines: a plain function would cost a
    # hop to the thread pool on every request.
    async def authorised(
        request: Request,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> str:
        key_id = keys.identify(creds.credentials if creds else None)
        if key_id is None:
            raise HTTPException(
                status_code=401,
                detail="missing or wrong bearer key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        _audit(request)["key_id"] = key_id
        return key_id

    async def loaded(
        request: Request,
        name: str,
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> LoadedModel:
        # The key first (401 before 404), in the same dependency: one fewer for
        # FastAPI to solve on the routes that carry the most traffic.
        await authorised(request, creds)
        model = store.get(name)
        if model is None:
            raise HTTPException(status_code=404, detail="no model of that name")
        _audit(request).update(model=model.name, model_version=model.version)
        return model

    @app.get("/health", tags=["service"])
    async def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get(
        "/ready",
        tags=["service"],
        responses={503: {"model": ErrorResponse, "description": "No model loaded."}},
    )
    async def ready() -> JSONResponse:
        """Readiness: at least one verified model is loaded."""
        n = len(store.models)
        return JSONResponse(
            status_code=200 if n else 503,
            content={"status": "ready" if n else "no model loaded", "models": n},
        )

    guarded = [Depends(authorised)]

    @app.get(
        "/v1/models",
        tags=["models"],
        dependencies=guarded,
        response_model=ModelList,
        responses={401: _ERRORS[401]},
    )
    async def models() -> Response:
        """Each loaded surrogate: twin, inputs and outputs with units, input domain,
        validation metrics from its card."""
        body = {"models": [inference.describe_model(m) for m in store.models.values()]}
        return _json(body)

    @app.post(
        _PREDICT,
        tags=["models"],
        response_model=PredictResponse,
        responses=_ERRORS,
    )
    async def predict(
        request: Request,
        body: PredictRequest,
        model: Annotated[LoadedModel, Depends(loaded)],
    ) -> Response:
        """Trajectories with units, outcomes, in-domain flags with reasons and, when
        the bundle carries them, uncertainty bands; or, for a cohort, outcome
        percentiles and the worst cases. A cohort or a large batch is one
        onnxruntime call of its own; small requests that arrive together share
        one."""
        if body.cases is not None and len(body.cases) <= _INLINE_CASES:
            # A few cases: prepared here (a fraction of a millisecond, too little
            # to be worth a hop to the thread pool), run with the other requests of
            # this turn of the event loop.
            prep = inference.prepare(model, body)
            y = await model.batcher.run(prep.p, prep.u)
            answer, n = inference.finish(model, body, prep, y), prep.n
        else:
            answer, n = await run_in_threadpool(inference.predict, model, body)
        _audit(request)["cases"] = n
        return _json(answer)

    @app.post(
        "/v1/models/{name}/compare",
        tags=["models"],
        response_model=CompareResponse,
        responses=_ERRORS,
    )
    def compare(
        request: Request,
        body: PredictRequest,
        model: Annotated[LoadedModel, Depends(loaded)],
    ) -> Response:
        """The same cases through the full solver and the surrogate: both answers
        and their errors, at most ``max_compare_cases`` cases."""
        answer, n = inference.compare(model, body, settings.max_compare_cases)
        _audit(request)["cases"] = n
        return _json(answer)


def _audit(request: Request) -> dict[str, Any]:
    return request.scope.setdefault("state", {}).setdefault("audit", {})


def _json(body: dict[str, Any]) -> Response:
    # orjson writes NumPy arrays directly, and non-finite numbers as null.
    data = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(content=data, media_type="application/json")


# ---------------------------------------------------------------------------
# Working examples in the OpenAPI document


def _add_examples(app: FastAPI, store: ModelStore, max_compare_cases: int) -> None:
    """Give each request body examples that work against a loaded model.

    The examples come from the first model's twin and the cohort its training data
    came from (else the twin's last cohort): an explicit case (the cohort's first
    patient at seed 0, the middle of the design domain, 36 steps) and a cohort query.
    """
    examples = {
        "predict": _examples(store, 100),
        "compare": _examples(store, min(10, max_compare_cases)),
    }
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        if not store.models:
            app.openapi_schema = schema
            return schema
        for route, route_examples in examples.items():
            path = schema["paths"].get(f"/v1/models/{{name}}/{route}", {})
            content = path.get("post", {}).get("requestBody", {}).get("content")
            if route_examples and content and "application/json" in content:
                content["application/json"]["examples"] = route_examples
        for path in schema["paths"].values():
            for op in path.values():
                for param in op.get("parameters", []):
                    if param.get("name") == "name" and param.get("in") == "path":
                        # The names this server answers to, so that the docs page
                        # (and a fuzzer) can pick one.
                        param["schema"]["enum"] = list(store.models)
                        param["example"] = next(iter(store.models))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _examples(store: ModelStore, cohort_n: int) -> dict[str, Any]:
    import pandas as pd

    if not store.models:
        return {}
    model = next(iter(store.models.values()))
    twin = model.runner.twin
    if not (twin.cohorts and twin.sample_cohort and twin.cases_from_design):
        return {}
    cohort = model.runner.card.input_domain.get("cohort")
    if cohort not in twin.cohorts:
        cohort = twin.cohorts[-1]
    row = {v.name: 0.5 * (v.low + v.high) for v in twin.input_domain.variables}
    step = model.runner.step
    duration = inference.duration_field(model)
    options = {duration: round(step * 36)}
    try:
        (patient,) = twin.sample_cohort(cohort, 1, 0)
        (case,) = twin.cases_from_design(pd.DataFrame([row]), [patient], options)
    except (ValueError, TypeError):
        logger.warning("model %s: no worked example could be built", model.name)
        return {}
    explicit = {
        "cases": [
            {
                "parameters": case.params.model_dump(mode="json", exclude_none=True),
                "device": case.device.model_dump(mode="json", exclude_none=True),
                "scenario": case.scenario.model_dump(mode="json", exclude_none=True),
            }
        ]
    }
    return {
        "case": {"summary": "one explicit case", "value": explicit},
        "cohort": {
            "summary": f"a cohort of {cohort_n} {cohort} patients",
            "value": {
                "cohort": {"name": cohort, "n": cohort_n, "seed": 1},
                "design": {k: round(v, 3) for k, v in list(row.items())[:2]},
                "options": {duration: round(step * 144)},
            },
        },
    }
