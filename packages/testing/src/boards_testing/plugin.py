"""The boards pytest plugin, loaded automatically through the ``pytest11`` entry point.

Session fixtures:

``python_image``, ``uv_image``, ``postgres_image``, ``redis_image``
    The image name to use for each kind (official, or the local stand-in; see
    :mod:`boards_testing.images`), resolved once per session.
``docker_client``
    A ``docker.DockerClient`` for the local engine.
``postgres_container`` / ``postgres_url``
    A PostgreSQL server (testcontainers ``PostgresContainer`` on ``postgres_image``), published on
    127.0.0.1 only; the URL is ``postgresql+psycopg://boards:boards@127.0.0.1:PORT/boards``.
``redis_container`` / ``redis_url``
    A Redis server (testcontainers ``RedisContainer`` on ``redis_image``), published on 127.0.0.1
    only; the URL is ``redis://127.0.0.1:PORT/0``.

Function fixture ``docker_network``: a fresh Docker network, removed afterwards.

Helpers for tests that start their own containers: :func:`publish_on_loopback` (publish ports on
127.0.0.1 only; tests may reach containers only there or on networks they create) and
:func:`loopback_url`.
"""

from __future__ import annotations

import os

# Before anything imports testcontainers: its reaper (ryuk) cannot be pulled here and the
# fixtures remove their containers themselves. With a local engine, containers are reached
# through their ports published on 127.0.0.1, also when the tests run inside a container.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
if os.environ.get("DOCKER_HOST", "unix://").startswith("unix://"):
    os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
    os.environ.setdefault("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest

from boards_testing import images

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

LOOPBACK = "127.0.0.1"
POSTGRES_USER = "boards"
POSTGRES_PASSWORD = "boards"  # noqa: S105 - a throw-away server reachable on loopback only
POSTGRES_DB = "boards"


def publish_on_loopback[C: DockerContainer](container: C, *ports: int | str) -> C:
    """Publish the given container ports (default: every port the container exposes so far) on
    127.0.0.1 only, each on a free host port. Call before ``start()``; returns the container.
    """
    mapping: dict[str, Any] = container.ports
    keys = [str(port) for port in ports] or list(mapping)
    if not keys:
        raise ValueError("no ports to publish: pass them or call with_exposed_ports() first")
    for key in keys:
        mapping[key] = (LOOPBACK, None)
    return container


def loopback_port(container: DockerContainer, port: int) -> int:
    """The host port on 127.0.0.1 that a started container's ``port`` is published on."""
    return int(container.get_exposed_port(port))


def loopback_url(
    container: DockerContainer, port: int, scheme: str = "http", path: str = ""
) -> str:
    """``scheme://127.0.0.1:HOSTPORT/path`` for a started container's published ``port``."""
    return f"{scheme}://{LOOPBACK}:{loopback_port(container, port)}/{path.lstrip('/')}"


def _resolve_visibly(config: pytest.Config, kind: str) -> str:
    """Resolve an image with output capture off, so a stand-in build shows its progress."""
    capman = config.pluginmanager.getplugin("capturemanager")
    quiet = capman.global_and_fixture_disabled() if capman else contextlib.nullcontext()
    with quiet:
        try:
            return images.resolve(kind)
        except images.ImageError as exc:
            pytest.fail(f"no {kind} image: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def python_image(pytestconfig: pytest.Config) -> str:
    """The python:3.12-slim image to use (official or stand-in)."""
    return _resolve_visibly(pytestconfig, "python")


@pytest.fixture(scope="session")
def uv_image(pytestconfig: pytest.Config) -> str:
    """The ghcr.io/astral-sh/uv image to use (official or stand-in)."""
    return _resolve_visibly(pytestconfig, "uv")


@pytest.fixture(scope="session")
def postgres_image(pytestconfig: pytest.Config) -> str:
    """The postgres:15 image to use (official or stand-in)."""
    return _resolve_visibly(pytestconfig, "postgres")


@pytest.fixture(scope="session")
def redis_image(pytestconfig: pytest.Config) -> str:
    """The redis:7 image to use (official or stand-in)."""
    return _resolve_visibly(pytestconfig, "redis")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """A docker SDK client for the local engine."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"no Docker engine answers: {exc}", pytrace=False)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def docker_network() -> Iterator[Network]:
    """A new Docker network for one test, removed afterwards."""
    from testcontainers.core.network import Network

    with Network() as network:
        yield network


def _postgres_container_class() -> Any:
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # testcontainers < 4.15
        from testcontainers.postgres import PostgresContainer
    return PostgresContainer


def _redis_container_class() -> Any:
    try:
        from testcontainers.community.redis import RedisContainer
    except ImportError:  # testcontainers < 4.15
        from testcontainers.redis import RedisContainer
    return RedisContainer


@pytest.fixture(scope="session")
def postgres_container(postgres_image: str) -> Iterator[Any]:
    """A PostgreSQL server for the session (testcontainers PostgresContainer), on loopback only."""
    container = _postgres_container_class()(
        postgres_image,
        username=POSTGRES_USER,
        password=POSTGRES_PASSWORD,
        dbname=POSTGRES_DB,
        driver="psycopg",
    )
    with publish_on_loopback(container, 5432) as started:
        yield started


@pytest.fixture(scope="session")
def postgres_url(postgres_container: Any) -> str:
    """``postgresql+psycopg://boards:boards@127.0.0.1:PORT/boards`` (SQLAlchemy form)."""
    port = loopback_port(postgres_container, 5432)
    password = quote(POSTGRES_PASSWORD, safe="")
    return f"postgresql+psycopg://{POSTGRES_USER}:{password}@{LOOPBACK}:{port}/{POSTGRES_DB}"


@pytest.fixture(scope="session")
def redis_container(redis_image: str) -> Iterator[Any]:
    """A Redis server for the session (testcontainers RedisContainer), on loopback only."""
    container = _redis_container_class()(redis_image)
    with publish_on_loopback(container, 6379) as started:
        yield started


@pytest.fixture(scope="session")
def redis_url(redis_container: Any) -> str:
    """``redis://127.0.0.1:PORT/0``."""
    return f"redis://{LOOPBACK}:{loopback_port(redis_container, 6379)}/0"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Repeat, at the end of the run, which official images were stood in for."""
    standins = images.used_standins()
    if not standins:
        return
    terminalreporter.section("boards: STAND-IN IMAGES WERE USED", sep="!", yellow=True, bold=True)
    for r in standins:
        terminalreporter.line(
            f"{r.kind}: {r.used} IN PLACE OF THE OFFICIAL {r.official} ({r.reason})", yellow=True
        )
