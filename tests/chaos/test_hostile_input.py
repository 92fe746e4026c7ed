"""Phase 3, hostile input: every request the API cannot accept gets a 4xx in the JSON error shape
(`{"error", "detail", "request_id"}`), decided early, never a 500, never our internals."""

from __future__ import annotations

import select
import socket
import time
import uuid
from dataclasses import dataclass, field

import httpx
import pytest

from tests.chaos.load import JOBS, LEAK
from tests.chaos.stack import Stack

JSON = {"Content-Type": "application/json"}
#: The API's default BOARDS_API_MAX_BODY_BYTES.
MAX_BODY = 1_048_576
#: Seconds a refusal of an oversized body may take. A server that waits for the body never
#: answers at all (the rest of the body is never sent), so this only bounds a slow machine.
REFUSAL_TIMEOUT = 10
INVALID = {400: "invalid_json", 422: "invalid_request"}
NOT_FOUND = {404: "not_found", 422: "invalid_request"}


@dataclass(frozen=True)
class Case:
    """One hostile request and the answers allowed: status -> error code (None: any code)."""

    method: str
    path: str
    allowed: dict[int, str | None]
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))


def post(body: bytes, allowed: dict[int, str | None] = INVALID, **headers: str) -> Case:
    return Case("POST", JOBS, allowed, body, headers or dict(JSON))


def get(job_id: str) -> Case:
    return Case("GET", f"{JOBS}/{job_id}", NOT_FOUND, headers={})


UNSUPPORTED = {415: "unsupported_media_type"}
CASES = {
    # Not numbers JSON knows: Python's json module accepts them, a float field must not.
    "delay NaN": post(b'{"payload":"a","delay_seconds":NaN}'),
    "delay Infinity": post(b'{"payload":"a","delay_seconds":Infinity}'),
    "delay -Infinity": post(b'{"payload":"a","delay_seconds":-Infinity}'),
    "lone surrogate": post(b'{"payload":"\\ud800"}'),
    "NUL in payload": post(b'{"payload":"a\\u0000b"}'),
    "invalid UTF-8": post(b'{"payload":"\xff\xfe"}'),
    "text/plain": post(b'{"payload":"a"}', UNSUPPORTED, **{"Content-Type": "text/plain"}),
    "form-urlencoded": post(
        b"payload=a", UNSUPPORTED, **{"Content-Type": "application/x-www-form-urlencoded"}
    ),
    "no Content-Type": Case("POST", JOBS, UNSUPPORTED, b'{"payload":"a"}', headers={}),
    "malformed JSON": post(b'{"payload": "a"', {400: "invalid_json"}),
    "empty body": post(b""),
    "JSON array": post(b'["payload", "a"]', {422: "invalid_request"}),
    "JSON number": post(b"42", {422: "invalid_request"}),
    "JSON string": post(b'"payload"', {422: "invalid_request"}),
    "JSON null": post(b"null", {422: "invalid_request"}),
    "payload not a string": post(b'{"payload":1}', {422: "invalid_request"}),
    "delay out of range": post(b'{"payload":"a","delay_seconds":31}', {422: "invalid_request"}),
    "Idempotency-Key too long": post(
        b'{"payload":"a"}', {400: None, 422: None}, **JSON, **{"Idempotency-Key": "k" * 256}
    ),
    "Idempotency-Key not visible ASCII": post(
        b'{"payload":"a"}', {400: None, 422: None}, **JSON, **{"Idempotency-Key": "a b"}
    ),
    "id %00": get("%00"),
    "id with %00 inside": get("abc%00def"),
    "id 4000 chars": get("x" * 4000),
    "id invalid UTF-8": get("%ff%fe"),
    "id path traversal": get("..%2F..%2Fetc%2Fpasswd"),
    "id SQL": get("%27%20OR%20%271%27%3D%271"),
    "id unicode": get("%E2%98%83"),
    "id unknown uuid": get(str(uuid.uuid4())),
}


def check_error_shape(response: httpx.Response, allowed: dict[int, str | None]) -> None:
    """A 4xx among ``allowed``, JSON `{"error", "detail", "request_id"}`, nothing internal."""
    text = response.text
    assert response.status_code in allowed, f"{response.status_code} (allowed {allowed}): {text}"
    assert not LEAK.search(text), f"internals in the body: {text}"
    body = response.json()
    assert isinstance(body, dict), text
    assert isinstance(body.get("error"), str) and isinstance(body.get("detail"), str), text
    wanted = allowed[response.status_code]
    assert wanted is None or body["error"] == wanted, f"error {body['error']!r}, not {wanted!r}"
    request_id = response.headers.get("x-request-id")
    assert request_id, "every response carries X-Request-ID"
    assert body.get("request_id") == request_id, f"request_id in body {body.get('request_id')!r}"


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_hostile_request_gets_4xx_error_shape(stack: Stack, case: Case) -> None:
    response = httpx.request(
        case.method,
        f"{stack.api_url}{case.path}",
        content=case.body,
        headers=case.headers,
        timeout=10,
    )
    check_error_shape(response, case.allowed)


def test_json_with_charset_is_accepted(stack: Stack) -> None:
    """The control for the 415 cases: application/json with a charset parameter is JSON."""
    response = httpx.post(
        f"{stack.api_url}{JOBS}",
        content=b'{"payload":"a"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
        timeout=10,
    )
    assert response.status_code == 202, response.text


def test_idempotency_key_reused_with_another_body(stack: Stack) -> None:
    key = {"Idempotency-Key": f"chaos-reuse-{uuid.uuid4().hex}"}
    first = httpx.post(f"{stack.api_url}{JOBS}", json={"payload": "one"}, headers=key, timeout=10)
    assert first.status_code == 202, first.text
    other = httpx.post(f"{stack.api_url}{JOBS}", json={"payload": "two"}, headers=key, timeout=10)
    check_error_shape(other, {422: "idempotency_key_reused"})


def test_client_request_id_is_echoed(stack: Stack) -> None:
    sent = f"chaos-{uuid.uuid4().hex}"
    for response in (
        httpx.get(f"{stack.api_url}/health", headers={"X-Request-ID": sent}, timeout=10),
        httpx.get(f"{stack.api_url}{JOBS}/nope", headers={"X-Request-ID": sent}, timeout=10),
    ):
        assert response.headers.get("x-request-id") == sent, dict(response.headers)
    assert response.json().get("request_id") == sent, response.text


# -- oversized bodies: refused before they are read ----------------------------------------------


def raw_request(stack: Stack, head: str) -> socket.socket:
    """A connection to the API with the request line and headers sent (the body is up to us)."""
    conn = socket.create_connection(("127.0.0.1", stack.api.port(8800)), timeout=REFUSAL_TIMEOUT)
    conn.sendall(head.encode("ascii") + b"\r\n\r\n")
    return conn


def read_response(conn: socket.socket) -> httpx.Response:
    """Read one HTTP/1.1 response (headers and a Content-Length body) off a raw connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return httpx.Response(int(status_line.split()[1]), headers=headers, content=body)


def test_oversized_content_length_is_refused_before_the_body(stack: Stack) -> None:
    """50 MB announced, 12 bytes sent: the 413 must come without waiting for the rest."""
    conn = raw_request(
        stack,
        f"POST {JOBS} HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
        "Content-Length: 52428800",
    )
    with conn:
        conn.sendall(b'{"payload":"')
        start = time.monotonic()
        try:
            response = read_response(conn)
        except TimeoutError:
            pytest.fail(f"no answer within {REFUSAL_TIMEOUT} s: the server waits for the body")
        took = time.monotonic() - start
    print(f"{response.status_code} from Content-Length after {took * 1000:.0f} ms")
    check_error_shape(response, {413: "body_too_large"})


def test_oversized_chunked_body_is_refused_while_streaming(stack: Stack) -> None:
    """No Content-Length: chunks of 64 KiB, never the last chunk. A 413 can only come from a
    server that counted the bytes as they arrived."""
    conn = raw_request(
        stack,
        f"POST {JOBS} HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked",
    )
    chunk = b"a" * 65536
    sent = 0
    with conn:
        try:
            while sent < 4 * MAX_BODY:
                readable, _, _ = select.select([conn], [], [], 0)
                if readable:  # the server answered: stop sending
                    break
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
            response = read_response(conn)
        except TimeoutError:
            pytest.fail(f"no answer after {sent} bytes chunked: the server waits for the end")
        except (BrokenPipeError, ConnectionResetError):
            response = read_response(conn)  # it answered and closed while we were sending
    print(f"{response.status_code} while streaming, after {sent} bytes sent (buffers included)")
    check_error_shape(response, {413: "body_too_large"})
