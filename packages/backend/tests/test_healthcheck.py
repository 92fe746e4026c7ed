"""``boards healthcheck``: worker mode (heartbeat files) and API mode (GET /health)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from boards import healthcheck
from boards_testing.processes import base_env, free_port, run_boards


def _server(status: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = status if self.path == "/health" else 404
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Server((host, 0), Handler)


@pytest.fixture(params=[200, 503])
def api(request: pytest.FixtureRequest) -> Iterator[tuple[int, int]]:
    server = _server(request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], request.param
    server.shutdown()
    server.server_close()


def test_api_mode_follows_the_port(tmp_path: Path, api: tuple[int, int]) -> None:
    port, status = api
    env = base_env(BOARDS_API_PORT=str(port), BOARDS_RUN_DIR=str(tmp_path / "run"))
    proc = run_boards("healthcheck", env=env)
    assert proc.returncode == (0 if status == 200 else 1), proc.stdout + proc.stderr
    assert f"127.0.0.1:{port}/health" in proc.stdout + proc.stderr


def test_api_mode_probes_an_ipv6_host(tmp_path: Path) -> None:
    try:
        server = _server(200, "::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        env = base_env(
            BOARDS_API_HOST="::1", BOARDS_API_PORT=str(port), BOARDS_RUN_DIR=str(tmp_path)
        )
        proc = run_boards("healthcheck", env=env)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == f"healthy: GET http://[::1]:{port}/health -> 200\n"


def test_api_mode_unhealthy_when_nothing_listens(tmp_path: Path) -> None:
    env = base_env(BOARDS_API_PORT=str(free_port()), BOARDS_RUN_DIR=str(tmp_path))
    started = time.monotonic()
    proc = run_boards("healthcheck", env=env)
    assert proc.returncode == 1
    assert "unhealthy" in proc.stderr
    assert time.monotonic() - started < 10


def test_api_mode_unhealthy_when_the_answer_is_not_http(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def answer_garbage() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"SSH-2.0-OpenSSH\r\n")

        thread = threading.Thread(target=answer_garbage, daemon=True)
        thread.start()
        port = listener.getsockname()[1]
        env = base_env(BOARDS_API_PORT=str(port), BOARDS_RUN_DIR=str(tmp_path))
        proc = run_boards("healthcheck", env=env)
        thread.join(timeout=10)
    assert proc.returncode == 1
    assert "not an HTTP answer" in proc.stderr


def test_worker_mode_fresh_and_stale_heartbeats(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # Nothing listens on this port: a worker-mode answer cannot come from an API probe.
    env = base_env(BOARDS_RUN_DIR=str(run_dir), BOARDS_API_PORT=str(free_port()))
    stale = run_dir / "worker-101.heartbeat"
    stale.touch()
    old = time.time() - 60
    os.utime(stale, (old, old))
    proc = run_boards("healthcheck", env=env)
    assert proc.returncode == 1
    assert "stale" in proc.stderr

    (run_dir / "worker-102.heartbeat").touch()  # the newest one counts
    proc = run_boards("healthcheck", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "worker heartbeat" in proc.stdout


def test_newest_heartbeat_age(tmp_path: Path) -> None:
    assert healthcheck.newest_heartbeat_age(tmp_path / "missing") is None
    assert healthcheck.newest_heartbeat_age(tmp_path) is None
    (tmp_path / "worker-1.heartbeat").touch()
    os.utime(tmp_path / "worker-1.heartbeat", (1000, 1000))
    assert healthcheck.newest_heartbeat_age(tmp_path, now=1030) == 30
    assert healthcheck.check_worker(30)[0] is False
    assert healthcheck.check_worker(19)[0] is True


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:8800/health"),
        ("::", "http://127.0.0.1:8800/health"),
        ("10.1.2.3", "http://10.1.2.3:8800/health"),
        ("fd00::1", "http://[fd00::1]:8800/health"),
    ],
)
def test_api_url_follows_the_host(monkeypatch: pytest.MonkeyPatch, host: str, url: str) -> None:
    monkeypatch.setenv("BOARDS_API_HOST", host)
    assert healthcheck.api_url() == url
