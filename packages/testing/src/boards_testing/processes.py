"""Running the workspace's own commands in tests: the venv's executables, an environment
without the developer's BOARDS_* settings, free loopback ports, a ``boards api`` server that
answers before the test goes on, stopping what was started."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from boards_testing.waiting import wait_for

#: The virtualenv's bin directory (the interpreter running the tests).
BIN = Path(sys.executable).parent
#: The backend's console script.
BOARDS = str(BIN / "boards")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def base_env(**values: str) -> dict[str, str]:
    """The current environment without BOARDS_* plus ``values``, the venv first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("BOARDS_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(values)
    return env


def run_boards(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``boards ARGS``, output captured, never raising on a non-zero exit."""
    return subprocess.run(  # noqa: S603 (the venv's own console script, no shell)
        [BOARDS, *args],
        env=dict(env) if env is not None else base_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def stop_process(proc: subprocess.Popen[Any], timeout: float = 15) -> int:
    """SIGTERM, wait; SIGKILL if it does not stop. Returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


@dataclass(frozen=True)
class ApiServer:
    """A running ``boards api`` (see ``serve_api``)."""

    proc: subprocess.Popen[bytes]
    url: str
    port: int
    env: dict[str, str]
    log: Path


@contextmanager
def serve_api(
    tmp_dir: Path, *, ready: str = "/health", timeout: float = 60, **values: str
) -> Iterator[ApiServer]:
    """``boards api`` on a free port of 127.0.0.1 with ``values`` (BOARDS_* variables) in its
    environment, its run directory and ``api.log`` (all its output) in ``tmp_dir``; entered once
    GET ``ready`` answers 200, stopped on exit. Fails the test if the server exits first."""
    port = free_port()
    env = base_env(
        BOARDS_API_HOST="127.0.0.1",
        BOARDS_API_PORT=str(port),
        BOARDS_RUN_DIR=str(tmp_dir / "run"),
        **values,
    )
    log = tmp_dir / "api.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 (the venv's own console script, no shell)
            [BOARDS, "api"], env=env, stdout=out, stderr=subprocess.STDOUT
        )

    def answers() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"boards api exited with {proc.returncode}:\n{log.read_text()}")
        # http.client, not urllib: no proxy from the environment between the test and loopback.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", ready)
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    try:
        wait_for(answers, timeout=timeout, what=f"boards api to answer {ready}")
        yield ApiServer(proc, f"http://127.0.0.1:{port}", port, env, log)
    finally:
        stop_process(proc)
