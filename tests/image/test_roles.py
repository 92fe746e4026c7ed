"""Role smoke tests: the image run the ways operators run it, through `boards` and with uvicorn or
dramatiq-gevent named on the command line.

Exit codes and messages are the ones docs/operations.md promises; the schema revision expected
is read from the migration scripts with alembic itself, not with the code under test.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import psycopg
import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from boards_client import BoardsClient
from boards_testing.plugin import postgres_url_of
from boards_testing.waiting import wait_for
from docker import DockerClient
from testcontainers.community.postgres import PostgresContainer
from testcontainers.core.network import Network
from testcontainers.core.wait_strategies import HttpWaitStrategy, LogMessageWaitStrategy

from tests.image.support import (
    NETWORK_DB_URL,
    NETWORK_REDIS_URL,
    ROOT,
    backend,
    base_url,
    logs,
    state,
    wait_exit,
    wait_healthy,
)

# Hosts that do not exist: neither the database nor Redis can be reached.
UNREACHABLE_ENV = {
    "BOARDS_DATABASE_URL": "postgresql://user:pass@host/db",
    "BOARDS_REDIS_URL": "redis://host:6379/0",
}
REDIS_FAILURE = re.compile(
    r"(?i)(connection ?error|error connecting|name or service not known|"
    r"temporary failure in name resolution|name resolution)"
)
#: The key docs/operations.md says migrations hold: pg_advisory_lock(int.from_bytes(b"boards")).
MIGRATION_LOCK = int.from_bytes(b"boards", "big")
HEAD = ScriptDirectory.from_config(
    Config(str(ROOT / "packages/backend/alembic.ini"))
).get_current_head()
UPGRADED = f"database schema upgraded to {HEAD}"
AT_HEAD = f"database schema is at head {HEAD}"


def schema_revisions(pg: PostgresContainer) -> list[str]:
    """The rows of alembic_version (none when no migration ran)."""
    engine = sa.create_engine(postgres_url_of(pg))
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return []
            return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()


def psycopg_conninfo(pg: PostgresContainer) -> str:
    url = sa.make_url(postgres_url_of(pg)).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def sessions_waiting_for_the_migration_lock(conn: psycopg.Connection) -> int:
    # A bigint advisory key shows in pg_locks as classid (high 32 bits), objid (low), objsubid 1.
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND classid = %s AND objid = %s AND objsubid = 1",
        (MIGRATION_LOCK >> 32, MIGRATION_LOCK & 0xFFFFFFFF),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_uvicorn_named_directly_serves_health_without_database(backend_image: str) -> None:
    api = backend(
        backend_image,
        "uvicorn",
        "boards.api.app:app",
        "--host",
        "0.0.0.0",
        "--port",
        "8800",
        env=UNREACHABLE_ENV,
    )
    api.waiting_for(HttpWaitStrategy(8800, "/health").for_status_code(200))
    with api:
        response = httpx.get(f"{base_url(api)}/health", timeout=5)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


def test_dramatiq_named_directly_keeps_retrying_an_unreachable_redis(backend_image: str) -> None:
    worker = backend(
        backend_image,
        "dramatiq-gevent",
        "boards.workers.actors:broker",
        "--processes",
        "1",
        "--threads",
        "50",
        env=UNREACHABLE_ENV,
        port=None,
    )
    with worker:
        # Two failures logged: the worker noticed, and it retried instead of exiting.
        LogMessageWaitStrategy(REDIS_FAILURE, times=2).with_startup_timeout(60).wait_until_ready(
            worker
        )
        assert state(worker)["Running"] is True
        assert worker.exec(["pgrep", "-f", "dramatiq"]).exit_code == 0
        # Alive but not consuming: the health check says so, with exit code 1.
        check = worker.exec(["boards", "healthcheck"])
        assert check.exit_code == 1, check.output
        assert check.output.decode().startswith("unhealthy: worker heartbeat stale: "), check


def test_api_role_migrates_sqlite_then_serves(backend_image: str) -> None:
    api = backend(backend_image)
    with api:
        wait_healthy(api)
        text = logs(api)
        migrated = text.find(UPGRADED)
        serving = text.find("Application startup complete")
        assert 0 <= migrated < serving, text
        assert api.exec(["test", "-s", "/app/data/boards.db"]).exit_code == 0
        body = httpx.get(f"{base_url(api)}/api/v1/system/health", timeout=10).json()
        assert body["database"] == {"status": "ok", "detail": "sqlite"}
        assert body["migrations"] == {"current": HEAD, "head": HEAD, "status": "ok", "detail": None}


def test_api_port_setting_moves_server_and_health_check(backend_image: str) -> None:
    api = backend(backend_image, env={"BOARDS_API_PORT": "9000"}, port=9000)
    with api:
        wait_healthy(api)  # the HEALTHCHECK followed the port, or this times out
        assert httpx.get(f"{base_url(api, 9000)}/health", timeout=5).status_code == 200
        probe = "import socket; socket.create_connection(('127.0.0.1', 8800), 1)"
        old_port = api.exec(["python", "-c", probe])  # nothing listens on the old port
        assert old_port.exit_code == 1, old_port.output
        assert (
            old_port.output.decode()
            .rstrip()
            .endswith("ConnectionRefusedError: [Errno 111] Connection refused")
        ), old_port.output


def test_migrate_role_upgrades_postgres_and_exits_zero(
    backend_image: str,
    network_postgres: PostgresContainer,
    docker_network: Network,
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
        assert UPGRADED in logs(migrate)
    assert schema_revisions(network_postgres) == [HEAD]


def test_failed_migration_exits_1_and_says_so(
    backend_image: str,
    network_postgres: PostgresContainer,
    docker_network: Network,
) -> None:
    # A table in the way: the first migration's CREATE TABLE fails for real.
    engine = sa.create_engine(postgres_url_of(network_postgres))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE jobs (id integer)"))
    engine.dispose()
    api = backend(
        backend_image, env={"BOARDS_DATABASE_URL": NETWORK_DB_URL}, network=docker_network
    )
    with api:
        assert wait_exit(api) == 1, logs(api)
        failed = re.search(r"\[ERROR\] migration failed: (.*)", logs(api))
        assert failed, logs(api)
        assert failed.group(1).startswith("ProgrammingError: "), failed.group(0)
        assert 'relation "jobs" already exists' in failed.group(1), failed.group(0)
        assert "Uvicorn running" not in logs(api)  # it never served
    assert schema_revisions(network_postgres) == []


@pytest.mark.parametrize(
    ("command", "env", "code", "line"),
    [
        (
            ["api"],
            {"BOARDS_API_PORT": "abc"},
            2,
            "boards: invalid setting BOARDS_API_PORT='abc': must be an integer from 1 to 65535",
        ),
        (
            ["api"],
            {"BOARDS_LOG_LEVEL": "loud"},
            2,
            "boards: invalid setting BOARDS_LOG_LEVEL='loud': "
            "must be one of critical, error, warning, info, debug",
        ),
        (
            ["worker"],
            {},
            2,
            "boards: invalid setting BOARDS_REDIS_URL: is required by the worker and "
            "must be a redis:// or rediss:// URL (redis://redis:6379/0)",
        ),
        (["migrate", "now"], {}, 2, "boards: migrate takes no arguments (got 'now')"),
        (["no-such-command"], {}, 127, "boards: command not found: no-such-command"),
    ],
    ids=["api-port", "log-level", "worker-without-redis", "migrate-argument", "unknown-command"],
)
def test_bad_start_exits_with_the_documented_code_and_one_line(
    backend_image: str, command: list[str], env: dict[str, str], code: int, line: str
) -> None:
    container = backend(backend_image, *command, env=env, port=None)
    with container:
        assert wait_exit(container) == code, logs(container)
        assert logs(container).splitlines() == [line]


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
        assert body["migrations"] == {"current": HEAD, "head": HEAD, "status": "ok", "detail": None}


def test_three_api_containers_take_turns_on_the_migration_lock(
    backend_image: str,
    network_postgres: PostgresContainer,
    docker_network: Network,
) -> None:
    # The test holds the lock first, so the three containers provably queue on it (three quick
    # migrations would otherwise pass without ever overlapping).
    apis = [
        backend(backend_image, env={"BOARDS_DATABASE_URL": NETWORK_DB_URL}, network=docker_network)
        for _ in range(3)
    ]
    with psycopg.connect(psycopg_conninfo(network_postgres), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        with ExitStack() as running:
            for api in apis:
                running.enter_context(api)
            wait_for(
                lambda: sessions_waiting_for_the_migration_lock(holder) == 3,
                timeout=90,
                interval=0.2,
                what="three sessions waiting for the migration lock in pg_locks",
            )
            assert schema_revisions(network_postgres) == []  # nobody got past the lock
            holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
            for api in apis:
                wait_healthy(api)
                assert httpx.get(f"{base_url(api)}/health/ready", timeout=10).status_code == 200
            texts = [logs(api) for api in apis]
    assert schema_revisions(network_postgres) == [HEAD]
    assert sorted((text.count(UPGRADED), text.count(AT_HEAD)) for text in texts) == [
        (0, 1),
        (0, 1),
        (1, 0),
    ], texts


@pytest.mark.usefixtures("network_postgres", "network_redis")  # the servers NETWORK_* reach
def test_job_round_trip_and_graceful_stop(
    backend_image: str,
    docker_network: Network,
) -> None:
    env = {"BOARDS_DATABASE_URL": NETWORK_DB_URL, "BOARDS_REDIS_URL": NETWORK_REDIS_URL}
    api = backend(backend_image, env=env, network=docker_network)
    # Grace for in-flight jobs: BOARDS_WORKER_SHUTDOWN_TIMEOUT - 1 = 8 s, well over the slow
    # job's 3 s and inside `docker stop`'s 10 s, so the job finishes rather than being handed back.
    worker_env = {**env, "BOARDS_WORKER_SHUTDOWN_TIMEOUT": "9"}
    worker = backend(backend_image, "worker", env=worker_env, network=docker_network, port=None)
    with api, worker:
        wait_healthy(api)
        wait_healthy(worker)
        with BoardsClient(base_url(api)) as client:
            job = client.wait_for_job(client.create_job("hello boards world").id, timeout=60)
            assert (job.status, job.error, job.attempts) == ("succeeded", None, 1), job
            assert job.result is not None
            assert (job.result["characters"], job.result["words"]) == (18, 3)

            # A job in flight when the worker is stopped is finished before the worker exits.
            slow = client.create_job("slow one", delay_seconds=3)
            wait_for(
                lambda: client.get_job(slow.id).status == "running",
                timeout=30,
                interval=0.1,
                what="the worker to pick the slow job up",
            )
            worker.get_wrapped_container().stop(timeout=10)
            assert state(worker)["ExitCode"] == 0, logs(worker)
            finished = client.get_job(slow.id)
            assert (finished.status, finished.attempts) == ("succeeded", 1), finished

        api.get_wrapped_container().stop(timeout=10)
        assert state(api)["ExitCode"] == 0, logs(api)
