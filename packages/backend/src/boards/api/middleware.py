"""Pure ASGI middleware of the API, outermost first:

* :class:`RequestContext` gives every request an id (the client's ``X-Request-ID`` when it is
  sane), puts it on every response, and turns an unhandled exception into a bare JSON 500 that
  carries only that id; the traceback goes to the log under the same id.
* :class:`HttpMetrics` counts requests by method, route template and status.
* :class:`BodyLimit` answers 413 before reading a body that is declared larger than the limit,
  and stops reading one that turns out larger while it streams in (answering 413 then too).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from boards.api.errors import Code, error_body
from boards.api.metrics import ApiMetrics

logger = logging.getLogger("boards.api")

REQUEST_ID_HEADER = b"x-request-id"
#: Methods counted by name; any other a client invents is counted as "other" (bounded series).
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: What a client-supplied request id may look like; anything else is replaced with our own.
_SANE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


async def _send_error(send: Send, status: int, body: bytes, *, close: bool = False) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = _header(scope, REQUEST_ID_HEADER)
        request_id = (
            offered.decode("ascii")
            if offered is not None and _SANE_ID.fullmatch(offered)
            else uuid.uuid4().hex
        )
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [
                    (k, v) for k, v in message.get("headers", ()) if k.lower() != REQUEST_ID_HEADER
                ]
                headers.append((REQUEST_ID_HEADER, request_id.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception(
                "request %s: unhandled error in %s %s",
                request_id,
                scope.get("method"),
                scope.get("path"),
            )
            if started:
                raise
            body = error_body(Code.INTERNAL_ERROR, "internal error", request_id)
            await _send_error(send_with_id, 500, body)


def route_template(scope: Scope) -> str:
    """The route template, not the path: one series per route, not per job id. FastAPI's own
    routes (/docs, /openapi.json, /redoc) are plain Starlette routes, known by their endpoint."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return str(path)
    endpoint = scope.get("endpoint")
    if endpoint is not None:
        for candidate in getattr(scope.get("app"), "routes", ()):
            if getattr(candidate, "endpoint", None) is endpoint:
                return str(candidate.path)
    return "unmatched"


class HttpMetrics:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets if the app raises before answering
        began = time.perf_counter()

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            template = route_template(scope)
            method = scope.get("method", "")
            self.metrics.observe_request(
                method if method in _KNOWN_METHODS else "other",
                template,
                status,
                time.perf_counter() - began,
            )


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _too_large(self, scope: Scope, send: Send) -> None:
        body = error_body(
            Code.BODY_TOO_LARGE,
            f"request bodies are limited to {self.max_bytes} bytes",
            (scope.get("state") or {}).get("request_id"),
        )
        # close: the rest of the body is never read, so the connection cannot be reused.
        await _send_error(send, 413, body, close=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length > self.max_bytes:
                await self._too_large(scope, send)
                return
        received = 0
        answered = False  # the app has started its response
        cut_off = False  # we answered 413 for a body that streamed past the limit

        async def counting_receive() -> Message:
            nonlocal received, cut_off
            if cut_off:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes and not answered:
                    # Answer here: an exception would be turned into a 400 by the body parser.
                    # The app is then told the client went away, and whatever it answers to
                    # that is dropped.
                    cut_off = True
                    await self._too_large(scope, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal answered
            if cut_off:
                return
            if message["type"] == "http.response.start":
                answered = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)
