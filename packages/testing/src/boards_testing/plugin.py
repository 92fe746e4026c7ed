"""The boards pytest plugin, loaded automatically through the ``pytest11`` entry point.

Session fixtures:

``python_image``, ``uv_image``, ``postgres_image``, ``redis_image``
    The image name to use for each kind: ``--python-image`` ... when given, else
    ``BOARDS_<KIND>_IMAGE``, else ``postgres:15`` / ``redis:7`` (python and uv have no default
    here: their tests are skipped, saying how to set them). See :mod:`boards_testing.images`.
``docker_client``
    A ``docker.DockerClient`` for the local engine.
``postgres_container`` / ``postgres_url``
    A PostgreSQL server (testcontainers ``PostgresContainer`` on ``postgres_image``), published on
    127.0.0.1 only; the URL is ``postgresql+psycopg://boards:boards@127.0.0.1:PORT/boards``.
    Under pytest-xdist, ``postgres_url`` is one server shared by the workers.
``redis_container`` / ``redis_url``
    A Redis server (testcontainers ``RedisContainer`` on ``redis_image``), published on 127.0.0.1
    only; the URL is ``redis://127.0.0.1:PORT/0``.

Function fixtures:

``no_boards_settings``
    No ``BOARDS_*`` variable of the caller's shell reaches the code under test (the session
    fixtures keep the images the session started with). A suite makes it autouse in its conftest.
``docker_network``
    A fresh Docker network, removed afterwards.
``network_postgres``
    A fresh PostgreSQL for one test, on its ``docker_network`` as ``db`` (and on 127.0.0.1 for
    the test itself: :func:`postgres_url_of`); containers on that network reach it at
    :data:`NETWORK_POSTGRES_URL`, ``postgresql://boards:boards@db:5432/boards``.
``network_redis``
    A fresh Redis for one test, on its ``docker_network`` as ``redis``; containers reach it at
    :data:`NETWORK_REDIS_URL`, ``redis://redis:6379/0``.

Helpers for tests that start their own containers: :func:`publish_on_loopback` (publish ports on
127.0.0.1 only; tests may reach containers only there or on networks they create) and
:func:`loopback_url`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os

# Before anything imports testcontainers: its reaper (ryuk) cannot be pulled here and the
# fixtures remove their containers themselves. With a local engine, containers are reached
# through their ports published on 127.0.0.1, also when the tests run inside a container.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
if os.environ.get("DOCKER_HOST", "unix://").startswith("unix://"):
    os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
    os.environ.setdefault("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest

from boards_testing import images

if TYPE_CHECKING:
    from testcontainers.community.postgres import PostgresContainer
    from testcontainers.community.redis import RedisContainer
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

LOOPBACK = "127.0.0.1"
POSTGRES_PORT = 5432
POSTGRES_USER = "boards"
POSTGRES_PASSWORD = "boards"  # noqa: S105 - a throw-away server reachable on loopback only
POSTGRES_DB = "boards"
REDIS_PORT = 6379
#: The names the network fixtures' servers answer to on the test's docker_network, and the URLs
#: containers on that network reach them by (PostgreSQL's in the form operators write).
NETWORK_POSTGRES_ALIAS = "db"
NETWORK_REDIS_ALIAS = "redis"
_CREDENTIALS = f"{POSTGRES_USER}:{quote(POSTGRES_PASSWORD, safe='')}"
NETWORK_POSTGRES_URL = (
    f"postgresql://{_CREDENTIALS}@{NETWORK_POSTGRES_ALIAS}:{POSTGRES_PORT}/{POSTGRES_DB}"
)
NETWORK_REDIS_URL = f"redis://{NETWORK_REDIS_ALIAS}:{REDIS_PORT}/0"


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


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("boards", "boards images (default: BOARDS_<KIND>_IMAGE)")
    for kind in images.KINDS:
        group.addoption(f"--{kind}-image", metavar="IMAGE", help=f"the {kind} image to use")


#: {kind: (image, official image it stands in for)} of the stand-ins this session used.
_standins: dict[str, tuple[str, str]] = {}
#: The BOARDS_<KIND>_IMAGE variables as the session started: tests that clear BOARDS_* settings
#: for the code under test must not change which images the session fixtures use.
_started_with = pytest.StashKey[dict[str, str]]()


def pytest_configure(config: pytest.Config) -> None:
    names = {images.env_var(kind) for kind in images.KINDS}
    config.stash[_started_with] = {k: v for k, v in os.environ.items() if k in names}


def _image(config: pytest.Config, docker_client: Any, kind: str) -> str:
    try:
        given = config.getoption(f"--{kind}-image")
        image = images.image_name(kind, given, config.stash[_started_with])
    except images.ImageNotSet as exc:
        pytest.skip(str(exc))
    official = images.standin_for(docker_client, image)
    if official is not None:
        _standins[kind] = (image, official)
    return image


def _image_fixture(kind: str, doc: str) -> Any:
    """The session fixture ``<kind>_image``: the image name to use for ``kind``."""

    def fixture(pytestconfig: pytest.Config, docker_client: Any) -> str:
        return _image(pytestconfig, docker_client, kind)

    fixture.__doc__ = doc
    return pytest.fixture(scope="session", name=f"{kind}_image")(fixture)


python_image = _image_fixture("python", "The backend's base image (python:3.12-slim family).")
uv_image = _image_fixture("uv", "The ghcr.io/astral-sh/uv image.")
postgres_image = _image_fixture("postgres", "The PostgreSQL image (default postgres:15).")
redis_image = _image_fixture("redis", "The Redis image (default redis:7).")


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
def no_boards_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No BOARDS_* variable of the caller's shell reaches the code under test."""
    for name in list(os.environ):
        if name.upper().startswith("BOARDS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def docker_network() -> Iterator[Network]:
    """A new Docker network for one test, removed afterwards."""
    from testcontainers.core.network import Network

    with Network() as network:
        yield network


def new_postgres_container(image: str) -> PostgresContainer:
    """A PostgreSQL container (not started) with the plugin's credentials, published on 127.0.0.1
    only."""
    from testcontainers.community.postgres import PostgresContainer

    container = PostgresContainer(
        image,
        username=POSTGRES_USER,
        password=POSTGRES_PASSWORD,
        dbname=POSTGRES_DB,
        driver="psycopg",
    )
    return publish_on_loopback(container, POSTGRES_PORT)


def new_redis_container(image: str) -> RedisContainer:
    """A Redis container (not started), published on 127.0.0.1 only."""
    from testcontainers.community.redis import RedisContainer

    return publish_on_loopback(RedisContainer(image), REDIS_PORT)


def postgres_url_of(container: DockerContainer) -> str:
    """``postgresql+psycopg://boards:boards@127.0.0.1:PORT/boards``: a started PostgreSQL of this
    plugin, as the test reaches it (SQLAlchemy form)."""
    port = loopback_port(container, POSTGRES_PORT)
    return f"postgresql+psycopg://{_CREDENTIALS}@{LOOPBACK}:{port}/{POSTGRES_DB}"


def _session_postgres(image: str) -> PostgresContainer:
    # A throw-away server: durability settings off, as for any test database (no crash is
    # survived here); the per-test databases it creates and drops cost far less so.
    return new_postgres_container(image).with_command(
        "postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )


@pytest.fixture(scope="session")
def postgres_container(postgres_image: str) -> Iterator[PostgresContainer]:
    """A PostgreSQL server for the session (testcontainers PostgresContainer), on loopback only;
    user, password and database ``boards``."""
    with _session_postgres(postgres_image) as started:
        yield started


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def postgres_url(
    request: pytest.FixtureRequest,
    postgres_image: str,
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: Any,
) -> Iterator[str]:
    """``postgresql+psycopg://boards:boards@127.0.0.1:PORT/boards`` (SQLAlchemy form).

    Under pytest-xdist the workers share one server (tests take databases of their own on it):
    one PostgreSQL start for the run, not one per worker. The last worker to finish removes it.
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield postgres_url_of(request.getfixturevalue("postgres_container"))
        return
    # The xdist workers' base temp dirs share this parent, one per run.
    record = tmp_path_factory.getbasetemp().parent / "boards-postgres.json"
    lock = record.with_suffix(".lock")
    with _locked(lock):
        if record.exists():
            shared = json.loads(record.read_text())
        else:
            started = _session_postgres(postgres_image).start()
            shared = {"id": started.get_wrapped_container().id, "url": postgres_url_of(started)}
            shared["users"] = 0
        shared["users"] += 1
        record.write_text(json.dumps(shared))
    yield str(shared["url"])
    with _locked(lock):
        shared = json.loads(record.read_text())
        shared["users"] -= 1
        if shared["users"]:
            record.write_text(json.dumps(shared))
            return
        record.unlink()
    docker_client.containers.get(shared["id"]).remove(force=True)


@pytest.fixture(scope="session")
def redis_container(redis_image: str) -> Iterator[RedisContainer]:
    """A Redis server for the session (testcontainers RedisContainer), on loopback only."""
    with new_redis_container(redis_image) as started:
        yield started


@pytest.fixture(scope="session")
def redis_url(redis_container: RedisContainer) -> str:
    """``redis://127.0.0.1:PORT/0``."""
    return f"redis://{LOOPBACK}:{loopback_port(redis_container, REDIS_PORT)}/0"


@pytest.fixture
def clean_redis_url(redis_url: str) -> str:
    """The session's Redis, emptied for this test (the session's tests share one server)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()
    return redis_url


def _on_network[C: DockerContainer](container: C, network: Network, alias: str) -> Iterator[C]:
    with container.with_network(network).with_network_aliases(alias) as started:
        yield started


@pytest.fixture
def network_postgres(postgres_image: str, docker_network: Network) -> Iterator[PostgresContainer]:
    """A fresh PostgreSQL for one test: ``db`` on its docker_network (containers there reach it
    at :data:`NETWORK_POSTGRES_URL`), 127.0.0.1 for the test (:func:`postgres_url_of`)."""
    yield from _on_network(
        new_postgres_container(postgres_image), docker_network, NETWORK_POSTGRES_ALIAS
    )


@pytest.fixture
def network_redis(redis_image: str, docker_network: Network) -> Iterator[RedisContainer]:
    """A fresh Redis for one test: ``redis`` on its docker_network (:data:`NETWORK_REDIS_URL`),
    127.0.0.1 for the test."""
    yield from _on_network(new_redis_container(redis_image), docker_network, NETWORK_REDIS_ALIAS)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under pytest-xdist, a worker hands the stand-ins it used to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["boards_standins"] = dict(_standins)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist, on the controller: the stand-ins a finished worker used, for the summary."""
    _standins.update(getattr(node, "workeroutput", {}).get("boards_standins", {}))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say, at the end of the run, which official images were stood in for."""
    if not _standins:
        return
    terminalreporter.section("boards: STAND-IN IMAGES WERE USED", sep="!", yellow=True, bold=True)
    for kind, (image, official) in _standins.items():
        terminalreporter.line(f"{kind}: {image} IN PLACE OF THE OFFICIAL {official}", yellow=True)
