"""The HTTP layer of a real ``boards api`` server (uvicorn with boards.api.protocol) over raw
sockets: slow and idle clients are cut off within the configured bounds, connections past the
cap are refused, and requests the HTTP parser rejects still get the JSON error shape and an
X-Request-ID.

Bounded: one server for the module, timeouts of about a second, each case a few seconds at most.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from boards_testing.processes import serve_api
from boards_testing.waiting import wait_for

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.5
KEEP_ALIVE = 1
MAX_CONNECTIONS = 20
#: Time allowed past a deadline for the close to reach the client (a loaded CI machine).
SLACK = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    tmp = tmp_path_factory.mktemp("http")
    with serve_api(
        tmp,
        BOARDS_DATA_DIR=str(tmp / "data"),
        BOARDS_API_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
        BOARDS_API_BODY_TIMEOUT=str(BODY_TIMEOUT),
        BOARDS_API_KEEP_ALIVE_TIMEOUT=str(KEEP_ALIVE),
        BOARDS_API_MAX_CONNECTIONS=str(MAX_CONNECTIONS),
    ) as api:
        yield "127.0.0.1", api.port


def read_until_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and the seconds that took; fails past
    ``limit`` seconds."""
    began = time.monotonic()
    sock.settimeout(limit)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"still open after {limit} s (received {received[:200]!r})")
    return received, time.monotonic() - began


def parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


POST_HEAD = b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
SLOW = {
    "nothing sent": (b"", HEADER_TIMEOUT),
    "half a head": (b"GET /health HTTP/1.1\r\nHost: x\r\n", HEADER_TIMEOUT),
    "half a body": (POST_HEAD + b'Content-Length: 100\r\n\r\n{"payload', BODY_TIMEOUT),
    "a chunk size never honoured": (
        POST_HEAD + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nabc",
        BODY_TIMEOUT,
    ),
}


@pytest.mark.parametrize("case", list(SLOW))
def test_slow_clients_are_cut_off(server: tuple[str, int], case: str) -> None:
    sent, bound = SLOW[case]
    with socket.create_connection(server) as sock:
        sock.sendall(sent)
        received, took = read_until_closed(sock, bound + SLACK)
    assert received == b""  # closed without an answer
    assert bound * 0.9 <= took, took  # by the deadline, not by anything earlier


def test_a_head_sent_a_byte_at_a_time_is_cut_off_at_the_deadline(server: tuple[str, int]) -> None:
    """Each byte would restart uvicorn's keep-alive timer; the head deadline runs on."""
    began = time.monotonic()
    with socket.create_connection(server) as sock:
        try:
            for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                sock.sendall(bytes([byte]))
                time.sleep(HEADER_TIMEOUT / 10)  # the drip itself: the client under test
        except (BrokenPipeError, ConnectionResetError):
            pass
        read_until_closed(sock, SLACK)
    assert time.monotonic() - began < HEADER_TIMEOUT + SLACK


def test_an_idle_keep_alive_connection_is_closed(server: tuple[str, int]) -> None:
    with socket.create_connection(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        received, took = read_until_closed(sock, KEEP_ALIVE + SLACK)
    assert parse(received)[0] == 200
    assert took >= KEEP_ALIVE * 0.9


MALFORMED = {
    "no Host on HTTP/1.1": (b"GET /health HTTP/1.1\r\n\r\n", 400, "bad_request"),
    "not HTTP": (b"HELLO\r\n\r\n", 400, "bad_request"),
    "Content-Length not a number": (POST_HEAD + b"Content-Length: ten\r\n\r\n", 400, "bad_request"),
    "Content-Length of 30 digits": (
        POST_HEAD + b"Content-Length: " + b"9" * 30 + b"\r\n\r\n",
        400,
        "bad_request",
    ),
    "two Content-Lengths": (
        POST_HEAD + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n{}",
        400,
        "bad_request",
    ),
    "a head past 16 KiB": (
        b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 20_000,
        431,
        "headers_too_large",
    ),
    "Transfer-Encoding gzip": (
        POST_HEAD + b"Transfer-Encoding: gzip\r\n\r\n",
        501,
        "not_implemented",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_requests_get_the_error_shape(server: tuple[str, int], case: str) -> None:
    sent, status, error = MALFORMED[case]
    with socket.create_connection(server) as sock:
        sock.sendall(sent)
        received, _ = read_until_closed(sock, SLACK)
    got, headers, body = parse(received)
    assert got == status, received
    assert headers["content-type"] == "application/json"
    answer = json.loads(body)
    assert answer["error"] == error
    assert answer["request_id"] == headers["x-request-id"]


def test_connections_past_the_cap_are_refused(server: tuple[str, int]) -> None:
    held = [socket.create_connection(server) for _ in range(MAX_CONNECTIONS)]
    try:
        with socket.create_connection(server) as extra:
            received, _ = read_until_closed(extra, SLACK)
        status, headers, body = parse(received)
        assert status == 503
        assert json.loads(body)["error"] == "too_many_connections"
        assert headers["retry-after"] == "1"
    finally:
        for sock in held:
            sock.close()

    def served() -> bool:
        return httpx.get(f"http://{server[0]}:{server[1]}/health", timeout=2).status_code == 200

    wait_for(served, timeout=10, what="a connection once the held ones are closed")
