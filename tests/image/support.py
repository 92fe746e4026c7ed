"""Helpers for the image tests: build with the `just image` script, run the backend image with
testcontainers (ports published on 127.0.0.1 only), and read its state."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from boards_testing import plugin
from boards_testing.plugin import loopback_url, publish_on_loopback
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network
from testcontainers.core.wait_strategies import HealthcheckWaitStrategy

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "tools" / "image" / "build.sh"
API_PORT = 8800
# How containers on a test network reach the database and the broker: the URLs of the plugin's
# network_* fixtures, which the chaos stack (tests/chaos/stack.py) uses too.
NETWORK_DB_URL = plugin.NETWORK_POSTGRES_URL
NETWORK_REDIS_URL = plugin.NETWORK_REDIS_URL
#: The image's health check every second, so `wait_healthy` returns soon after the role is up;
#: the image's own interval (docs/operations.md#health) would make every wait take that long.
#: The command and the other settings stay the image's (test_structure checks those).
QUICK_HEALTHCHECK = {"interval": 1_000_000_000}  # nanoseconds


def build_image(
    tag: str, *extra: str, env: Mapping[str, str], context: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """Build with tools/image/build.sh (the `just image` script), plain progress, output kept.
    `env` adds to this process's environment (the `image_build_env` fixture's base images)."""
    return subprocess.run(
        [str(BUILD), "--tag", tag, "--context", str(context), "--progress=plain", *extra],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def workspace_copy(dest: Path) -> Path:
    """A copy of the workspace (tools/image/copy-workspace.sh), for builds that change files."""
    subprocess.run([str(ROOT / "tools/image/copy-workspace.sh"), str(dest)], check=True)
    return dest


def backend(
    image: str,
    *command: str,
    env: dict[str, str] | None = None,
    network: Network | None = None,
    port: int | None = API_PORT,
    **docker_kwargs: Any,
) -> DockerContainer:
    """A container of the backend image; `port` is published on 127.0.0.1 only. Its health check
    runs every second (QUICK_HEALTHCHECK) unless `healthcheck` is given."""
    docker_kwargs.setdefault("healthcheck", QUICK_HEALTHCHECK)
    container = DockerContainer(image, **docker_kwargs)
    if command:
        container.with_command(list(command))
    for key, value in (env or {}).items():
        container.with_env(key, value)
    if port is not None:
        publish_on_loopback(container, port)
    if network is not None:
        container.with_network(network)
    return container


def base_url(container: DockerContainer, port: int = API_PORT) -> str:
    return loopback_url(container, port).rstrip("/")


def wait_healthy(container: DockerContainer, timeout: float = 90) -> None:
    """Wait for Docker's own health status (the image's HEALTHCHECK command) to say healthy."""
    HealthcheckWaitStrategy().with_startup_timeout(int(timeout)).wait_until_ready(container)


def wait_exit(container: DockerContainer, timeout: float = 60) -> int:
    result = container.get_wrapped_container().wait(timeout=timeout)
    return int(result["StatusCode"])


def logs(container: DockerContainer) -> str:
    out, err = container.get_logs()
    return (out + err).decode(errors="replace")


def state(container: DockerContainer) -> dict[str, Any]:
    wrapped = container.get_wrapped_container()
    wrapped.reload()
    return dict(wrapped.attrs["State"])
