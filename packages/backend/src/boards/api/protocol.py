"""uvicorn's h11 protocol with the limits uvicorn lacks: ``boards api`` serves with
``--http boards.api.protocol:BoundedH11Protocol``.

Home-made because uvicorn bounds only the idle time *between* requests (``--timeout-keep-alive``,
cancelled by any byte received) and has no request-head or request-body timeout (uvicorn issue
#157); ``--limit-concurrency`` answers 503 to a finished request head, so connections that never
finish one are not counted against it. This subclass adds, per connection:

* a deadline for the request head (``BOARDS_API_HEADER_TIMEOUT``), from the connection's first
  moment or from the first byte of a next request: a client that sends nothing, or half a head,
  or a chunk size it never honours, is disconnected;
* a deadline for the body (``BOARDS_API_BODY_TIMEOUT``), from the end of the head;
* at most ``BOARDS_API_MAX_CONNECTIONS`` open connections: one more is answered 503 and closed;
* the error shape and an ``X-Request-ID`` on the requests h11 itself rejects (uvicorn's own
  answer is a plain-text 400 without either), with h11's status (431 for an oversized head).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from http import HTTPStatus
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from boards.api.errors import Code, error_body
from boards.settings import Settings, load_settings_or_exit

logger = logging.getLogger("boards.api")

#: What a client is told when h11 rejects its request, by h11's status hint.
_REJECTED = {
    400: (Code.BAD_REQUEST, "the request is not valid HTTP/1.1"),
    431: (Code.HEADERS_TOO_LARGE, "the request line and headers are too large"),
    501: (
        Code.NOT_IMPLEMENTED,
        "the request uses a Transfer-Encoding this server does not support",
    ),
}


@functools.cache
def _settings() -> Settings:
    # Read once per process, from the same environment as the app's.
    return load_settings_or_exit()


def raw_error(
    status: int, error: str, detail: str, request_id: str, headers: tuple[str, ...] = ()
) -> bytes:
    """A complete HTTP/1.1 error response in the API's shape, closing the connection."""
    body = error_body(error, detail, request_id)
    head = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
        f"x-request-id: {request_id}",
        *headers,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


class _Connection(h11.Connection):
    """Remembers the status h11 suggests for the request it rejected."""

    rejected_status = 400

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.rejected_status = exc.error_status_hint
            raise


class BoundedH11Protocol(H11Protocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = _Connection(h11.SERVER, self.conn._max_incomplete_event_size)
        limits = _settings()
        self.header_timeout = limits.api_header_timeout
        self.body_timeout = limits.api_body_timeout
        self.max_connections = limits.api_max_connections
        self._deadline: asyncio.TimerHandle | None = None
        self._phase: str | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            request_id = uuid.uuid4().hex
            logger.warning(
                "request %s: connection refused, %d already open", request_id, self.max_connections
            )
            transport.write(
                raw_error(
                    503,
                    Code.TOO_MANY_CONNECTIONS,
                    "the server has too many open connections; retry later",
                    request_id,
                    ("retry-after: 1",),
                )
            )
            transport.close()
            return
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._arm(None, 0)
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        status = getattr(self.conn, "rejected_status", 400)
        error, detail = _REJECTED.get(status, _REJECTED[400])
        request_id = uuid.uuid4().hex
        logger.info("request %s: rejected by the HTTP parser (%d): %s", request_id, status, msg)
        self.transport.write(raw_error(status, error, detail, request_id))
        self.transport.close()

    def _watch(self) -> None:
        """Arm the deadline of what the connection is waiting for from the client, if any."""
        if self.transport.is_closing():
            self._arm(None, 0)
        elif self.conn.their_state is h11.IDLE and self.timeout_keep_alive_task is None:
            self._arm("head", self.header_timeout)  # uvicorn's keep-alive timer is not running
        elif self.conn.their_state is h11.SEND_BODY:
            self._arm("body", self.body_timeout)
        else:
            self._arm(None, 0)  # idle under keep-alive, or the app is answering

    def _arm(self, phase: str | None, seconds: float) -> None:
        if phase == self._phase:
            return  # the deadline runs from the start of the phase
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._phase = phase
        if phase is not None:
            self._deadline = self.loop.call_later(seconds, self._expired, phase, seconds)

    def _expired(self, phase: str, seconds: float) -> None:
        self._deadline = None
        self._phase = None
        if not self.transport.is_closing():
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "client"
            logger.info("%s: no complete request %s within %g s: closed", client, phase, seconds)
            self.transport.close()
