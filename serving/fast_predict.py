"""A short way through the server for the request it sees most: a small predict.

A single what-if of a device team spends a fifth of its server time in FastAPI and
Starlette (routing, dependency solving, parsing the body twice over, the response
object), more than its own validation. :class:`FastPredict` sits in front of the
FastAPI app and answers ``POST /v1/models/{name}/predict`` itself when everything
about the request is well formed: an accepted bearer key, a loaded model, a JSON
body that :class:`~serving.schemas.PredictRequest` accepts with at most
``inline_cases`` explicit cases, cases that the twin accepts. It computes the answer
with the same functions as the route (:func:`serving.inference.prepare`, the model's
micro-batcher, :func:`serving.inference.finish`), so the bytes are the same.

Anything else (a missing key, an unknown model, a body that does not validate, a
case the twin refuses, any error while preparing it, a cohort or a larger batch)
goes on to the FastAPI app with the body as it came, and gets the app's answer: its
401, 404 and 422 messages, its OpenAPI-documented behaviour. The short way answers
only 200s; should the model itself fail while it runs, the error goes to the app's
500 handler, as it would from the route.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from pydantic import ValidationError

from serving import inference
from serving.schemas import PredictRequest
from serving.security import ApiKeys
from serving.store import ModelStore

__all__ = ["FastPredict"]

_PATH = re.compile(r"/v1/models/([^/]+)/predict")
_JSON = re.compile(rb"application/json\s*(;.*)?", re.IGNORECASE)


class FastPredict:
    """ASGI middleware: answer well-formed small predicts without FastAPI.

    Args:
        app: the FastAPI app (and its middleware) behind.
        store: the models.
        keys: the accepted keys.
        inline_cases: most explicit cases a request may have to be answered here.
        route: what the audit line names as the route, as FastAPI's would.
    """

    def __init__(
        self,
        app: Any,
        store: ModelStore,
        keys: ApiKeys,
        inline_cases: int,
        route: Any = None,
    ):
        self.app = app
        self.store = store
        self.keys = keys
        self.inline_cases = inline_cases
        self.route = route
        self.answered = 0  # requests answered here, for tests and curiosity

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        match = _PATH.fullmatch(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        message = await receive()
        body = message.get("body", b"")
        if message.get("more_body", False):
            # Streamed in several parts: rare; the app reads the rest itself.
            await self.app(scope, _replay(message, receive), send)
            return
        answer = self._answer(scope, match.group(1), body)
        if answer is None:
            await self.app(scope, _replay(message, receive), send)
            return
        data = orjson.dumps(await answer(), option=orjson.OPT_SERIALIZE_NUMPY)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(data)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})
        self.answered += 1

    def _answer(self, scope: dict, name: str, body: bytes) -> Any:
        """A coroutine giving the answer, or ``None`` when the app should answer
        (any check failing, any error on the way)."""
        key = content_type = None
        for header, value in scope["headers"]:
            # The first of each, as Starlette's headers give.
            if header == b"authorization" and key is None:
                key = value
            elif header == b"content-type" and content_type is None:
                content_type = value
        if key is None or content_type is None or not _JSON.fullmatch(content_type):
            return None
        # As FastAPI's HTTPBearer reads the header.
        scheme, _, token = key.decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        key_id = self.keys.identify(token)
        model = self.store.get(name)
        if key_id is None or model is None:
            return None
        try:
            req = PredictRequest.model_validate_json(body)
        except ValidationError:
            return None
        if req.cases is None or len(req.cases) > self.inline_cases:
            return None
        try:
            prep = inference.prepare(model, req)
        except Exception:  # the app answers it, as it would have anyway
            return None

        scope["route"] = self.route
        scope.setdefault("state", {}).setdefault("audit", {}).update(
            key_id=key_id, model=model.name, model_version=model.version, cases=prep.n
        )

        async def answer() -> dict[str, Any]:
            y = await model.batcher.run(prep.p, prep.u)
            return inference.finish(model, req, prep, y)

        return answer


def _replay(first: dict, receive: Any) -> Any:
    """``receive`` that gives ``first`` again before what is still to come."""
    replayed = False

    async def again() -> dict:
        nonlocal replayed
        if not replayed:
            replayed = True
            return first
        return await receive()

    return again
