"""Role smoke tests: the image run the ways the tickets and operators run it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from boards_client import BoardsClient
from boards_testing.waiting import wait_for
from docker import DockerClient
from testcontainers.community.postgres import PostgresContainer
from testcontainers.community.redis import RedisContainer
from testcontainers.core.network import Network
from testcontainers.core.wait_strategies import HttpWaitStrategy, LogMessageWaitStrategy

from tests.image.support import (
    NETWORK_DB_URL,
    NETWORK_REDIS_URL,
    backend,
    base_url,
    logs,
    state,
    wait_exit,
    wait_healthy,
)

# The first ticket's environment: hosts that do not exist.
TICKET_ENV = {
    "BOARDS_DATABASE_URL": "postgresql://user:pass@host/db",
    "BOARDS_REDIS_URL": "redis://host:6379/0",
}
REDIS_FAILURE = re.compile(
    r"(?i)(connection ?error|error connecting|name or service not known|"
    r"temporary failure in name resolution|name resolution)"
)


def schema_revisions(pg: PostgresContainer) -> list[str]:
    engine = sa.create_engine(pg.get_connection_url())
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()


def test_ticket_api_command_serves_health_without_database(backend_image: str) -> None:
    api = backend(
        backend_image,
        "uvicorn",
        "boards.api.app:app",
        "--host",
        "0.0.0.0",
        "--port",
        "8800",
        env=TICKET_ENV,
    )
    api.waiting_for(HttpWaitStrategy(8800, "/health").for_status_code(200))
    with api:
        response = httpx.get(f"{base_url(api)}/health", timeout=5)
        assert response.status_code == 200
        assert response.json()["status"] == "ok"


def test_ticket_worker_command_keeps_retrying_an_unreachable_redis(backend_image: str) -> None:
    worker = backend(
        backend_image,
        "dramatiq-gevent",
        "boards.workers.actors:broker",
        "--processes",
        "1",
        "--threads",
        "50",
        env=TICKET_ENV,
        port=None,
    )
    with worker:
        # Two failures logged: the worker noticed, and it retried instead of exiting.
        LogMessageWaitStrategy(REDIS_FAILURE, times=2).with_startup_timeout(60).wait_until_ready(
            worker
        )
        assert state(worker)["Running"] is True
        assert worker.exec(["pgrep", "-f", "dramatiq"]).exit_code == 0
        # Alive but not consuming: the health check must say so.
        assert worker.exec(["boards", "healthcheck"]).exit_code != 0


def test_api_role_migrates_sqlite_then_serves(backend_image: str) -> None:
    api = backend(backend_image)
    with api:
        wait_healthy(api)
        text = logs(api)
        migrated = re.search(r"database schema upgraded to \S+", text)
        serving = re.search(r"Uvicorn running|Application startup complete", text)
        assert migrated and serving and migrated.start() < serving.start(), text
        assert api.exec(["test", "-s", "/app/data/boards.db"]).exit_code == 0
        body = httpx.get(f"{base_url(api)}/api/v1/system/health", timeout=10).json()
        assert body["database"]["status"] == "ok"
        assert body["migrations"]["current"] == body["migrations"]["head"] is not None


def test_api_port_setting_moves_server_and_health_check(backend_image: str) -> None:
    api = backend(backend_image, env={"BOARDS_API_PORT": "9000"}, port=9000)
    with api:
        wait_healthy(api)  # the HEALTHCHECK followed the port, or this times out
        assert httpx.get(f"{base_url(api, 9000)}/health", timeout=5).status_code == 200
        probe = "import socket; socket.create_connection(('127.0.0.1', 8800), 1)"
        assert api.exec(["python", "-c", probe]).exit_code != 0  # nothing on the old port


def test_migrate_role_upgrades_postgres_and_exits_zero(
    backend_image: str, pg: PostgresContainer, docker_network: Network
) -> None:
    migrate = backend(
        backend_image,
        "migrate",
        env={"BOARDS_DATABASE_URL": NETWORK_DB_URL},
        network=docker_network,
        port=None,
    )
    with migrate:
        assert wait_exit(migrate) == 0, logs(migrate)
    assert len(schema_revisions(pg)) == 1


def test_failed_migration_exits_nonzero_and_says_so(
    backend_image: str, pg: PostgresContainer, docker_network: Network
) -> None:
    # A table in the way: the first migration's CREATE TABLE fails for real.
    engine = sa.create_engine(pg.get_connection_url())
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE jobs (id integer)"))
    engine.dispose()
    api = backend(
        backend_image, env={"BOARDS_DATABASE_URL": NETWORK_DB_URL}, network=docker_network
    )
    with api:
        assert wait_exit(api) != 0
        assert re.search(r"(?i)migration failed", logs(api)), logs(api)


@pytest.mark.parametrize(
    ("command", "env", "variable"),
    [
        (["api"], {"BOARDS_API_PORT": "abc"}, "BOARDS_API_PORT"),
        (["api"], {"BOARDS_LOG_LEVEL": "loud"}, "BOARDS_LOG_LEVEL"),
        (["worker"], {}, "BOARDS_REDIS_URL"),
    ],
)
def test_bad_setting_exits_2_with_one_line(
    backend_image: str, command: list[str], env: dict[str, str], variable: str
) -> None:
    container = backend(backend_image, *command, env=env, port=None)
    with container:
        assert wait_exit(container) == 2
        lines = logs(container).strip().splitlines()
        assert len(lines) == 1 and variable in lines[0], lines


@pytest.fixture
def data_volume(docker_client: DockerClient) -> Iterator[str]:
    volume = docker_client.volumes.create(f"boards-test-{uuid.uuid4().hex[:8]}")
    yield volume.name
    volume.remove(force=True)


def test_api_runs_read_only_without_capabilities(backend_image: str, data_volume: str) -> None:
    api = backend(
        backend_image,
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
    ).with_volume_mapping(data_volume, "/app/data", "rw")
    api.tmpfs["/tmp"] = "rw,nosuid,nodev"
    with api:
        wait_healthy(api)
        body = httpx.get(f"{base_url(api)}/api/v1/system/health", timeout=10).json()
        assert body["migrations"]["current"] == body["migrations"]["head"]


def test_three_api_containers_share_one_fresh_database(
    backend_image: str, pg: PostgresContainer, docker_network: Network
) -> None:
    apis = [
        backend(backend_image, env={"BOARDS_DATABASE_URL": NETWORK_DB_URL}, network=docker_network)
        for _ in range(3)
    ]
    for api in apis:
        api.start()
    try:
        for api in apis:
            wait_healthy(api)
            assert httpx.get(f"{base_url(api)}/health/ready", timeout=10).status_code == 200
        assert len(schema_revisions(pg)) == 1
    finally:
        for api in apis:
            api.stop()


def test_job_round_trip_and_graceful_stop(
    backend_image: str, pg: PostgresContainer, redis: RedisContainer, docker_network: Network
) -> None:
    env = {"BOARDS_DATABASE_URL": NETWORK_DB_URL, "BOARDS_REDIS_URL": NETWORK_REDIS_URL}
    api = backend(backend_image, env=env, network=docker_network)
    worker = backend(backend_image, "worker", env=env, network=docker_network, port=None)
    with api, worker:
        wait_healthy(api)
        wait_healthy(worker)
        with BoardsClient(base_url(api)) as client:
            job = client.wait_for_job(client.create_job("hello boards world").id, timeout=60)
            assert job.status == "succeeded", job
            assert job.result is not None and job.result["words"] == 3

            # A job in flight when the worker is stopped is finished (or handed back).
            slow = client.create_job("slow one", delay_seconds=2)
            wait_for(
                lambda: client.get_job(slow.id).status == "running",
                timeout=30,
                interval=0.1,
                what="the worker to pick the slow job up",
            )
            worker.get_wrapped_container().stop(timeout=10)
            assert state(worker)["ExitCode"] == 0, logs(worker)
            assert client.get_job(slow.id).status in {"succeeded", "queued"}

        api.get_wrapped_container().stop(timeout=10)
        assert state(api)["ExitCode"] == 0, logs(api)
