"""Running the workspace's own commands in tests: the venv's executables, an environment
without the developer's BOARDS_* settings, free loopback ports, stopping what was started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
