"""The API's ASGI middleware on its own: the body limit decides before reading."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from boards.api.middleware import BodyLimit
from starlette.types import Message, Receive, Scope, Send

LIMIT = 1024


def http_scope(headers: list[tuple[bytes, bytes]]) -> Scope:
    return {"type": "http", "method": "POST", "path": "/api/v1/jobs", "headers": headers}


async def reading_app(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that reads the whole body, then answers 202."""
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 202, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def run(app: Any, scope: Scope, chunks: list[bytes]) -> tuple[list[Message], int]:
    sent: list[Message] = []
    reads = 0

    async def receive() -> Message:
        nonlocal reads
        reads += 1
        chunk = chunks[reads - 1] if reads <= len(chunks) else b""
        return {"type": "http.request", "body": chunk, "more_body": reads < len(chunks)}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent, reads


def test_declared_oversize_is_413_without_reading_a_byte() -> None:
    scope = http_scope([(b"content-length", b"52428800")])  # 50 MB announced
    sent, reads = run(BodyLimit(reading_app, LIMIT), scope, [b"x" * 100])
    assert reads == 0
    assert sent[0]["status"] == 413
    assert (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["error"] == "body_too_large"


async def parsing_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Like FastAPI's body parser: any failure while reading becomes a 400."""
    status = 202
    try:
        while (message := await receive())["type"] == "http.request" and message["more_body"]:
            pass
        if message["type"] == "http.disconnect":
            status = 400
    except Exception:
        status = 400
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def test_streamed_oversize_is_a_413_once_past_the_limit() -> None:
    chunks = [b"x" * 600] * 100  # chunked, no Content-Length
    sent, reads = run(BodyLimit(parsing_app, LIMIT), http_scope([]), chunks)
    assert reads == 2  # stopped at the chunk that crossed the limit
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [413]
    assert json.loads(sent[1]["body"])["error"] == "body_too_large"


def test_bodies_within_the_limit_pass() -> None:
    scope = http_scope([(b"content-length", b"1000")])
    sent, _ = run(BodyLimit(reading_app, LIMIT), scope, [b"x" * 1000])
    assert sent[0]["status"] == 202
