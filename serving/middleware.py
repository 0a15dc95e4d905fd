"""ASGI middleware: body size limit and one JSON audit line per request.

Both are plain ASGI (no ``BaseHTTPMiddleware``), so they add microseconds, not
milliseconds, to a request.

The size limit reads the body before the app sees it: a declared
``Content-Length`` over the limit is answered 413 at once; a chunked body (no length)
is counted as it arrives and answered 413 as soon as it passes the limit. The app then
gets the body replayed from memory.

The audit line holds time, key id, method, route, model and version, case count,
status, latency and the server process's id: never a header value, a body or a
patient value. Endpoints add their part through ``scope["state"]["audit"]``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC, datetime
from typing import Any

__all__ = ["AUDIT_LOGGER", "BodyLimitAndAudit", "log_audit_to_stderr"]

AUDIT_LOGGER = "serving.audit"
audit_logger = logging.getLogger(AUDIT_LOGGER)

_TOO_LARGE = json.dumps({"detail": "request body too large"}).encode()


def log_audit_to_stderr() -> None:
    """Write the audit lines, as they are, one a line, to standard error (once)."""
    logging.getLogger("serving").setLevel(logging.INFO)
    if any(getattr(h, "_medtwin_audit", False) for h in audit_logger.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._medtwin_audit = True  # type: ignore[attr-defined]
    audit_logger.addHandler(handler)
    audit_logger.setLevel(logging.INFO)
    audit_logger.propagate = False


class _TooLarge(Exception):
    pass


class BodyLimitAndAudit:
    """Wrap an ASGI app with a body limit of ``max_body_bytes`` and an audit line."""

    def __init__(self, app: Any, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = int(max_body_bytes)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        audit: dict[str, Any] = {}
        scope.setdefault("state", {})["audit"] = audit
        status = {"code": 500}

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            body = await self._read_body(scope, receive)
        except _TooLarge:
            await _send_413(send)
            status["code"] = 413
        else:
            replayed = False

            async def replay() -> dict:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send_wrapper)
        finally:
            self._audit(scope, audit, status["code"], start)

    async def _read_body(self, scope: dict, receive: Any) -> bytes:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_body_bytes:
                    raise _TooLarge
        chunks = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    @staticmethod
    def _audit(scope: dict, audit: dict[str, Any], status: int, start: float) -> None:
        if not audit_logger.isEnabledFor(logging.INFO):
            return
        route = scope.get("route")
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "key_id": audit.get("key_id"),
            "method": scope.get("method"),
            "route": getattr(route, "path", None) or scope.get("path"),
            "model": audit.get("model"),
            "model_version": audit.get("model_version"),
            "cases": audit.get("cases"),
            "status": status,
            "latency_ms": round(1e3 * (time.perf_counter() - start), 3),
            "pid": os.getpid(),  # which worker of `medtwin serve --workers N`
        }
        audit_logger.info("%s", json.dumps(line, separators=(",", ":")))


async def _send_413(send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_TOO_LARGE)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _TOO_LARGE})
