"""No password, token or SQL in a message: the masking function, the log formatter, and the
API's start-up log and health answers with secrets in every part of its URLs (real PostgreSQL,
real Redis, `boards api` as a process)."""

from __future__ import annotations

import io
import logging
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boards.db
import dramatiq
import httpx
import psycopg
import pytest
from boards.api.factory import create_app
from boards.db import get_database
from boards.jobs import ACTOR_NAME, QUEUE_NAME, create_job
from boards.logs import configure_logging, one_line
from boards.migrations import upgrade_to_head
from boards.redact import mask_url, scrub
from boards.settings import Settings, default_alembic_ini, load_settings
from boards.workers import middleware
from boards.workers.broker import job_options, worker_middleware
from boards.workers.middleware import LeaseKeeper
from boards.workers.process import process_delivery
from boards_testing.processes import BOARDS, base_env, free_port, stop_process
from boards_testing.waiting import wait_for
from dramatiq.brokers.stub import StubBroker
from fastapi.testclient import TestClient
from psycopg import sql
from sqlalchemy import create_engine, make_url, text

#: (url, what the masked form must still show). The secret is always ``S3CRET``.
URLS = [
    ("postgresql://boards:S3CRET@db:5432/boards", "postgresql://boards:***@db:5432/boards"),
    ("postgresql://boards:S3%40CR%3AET@db/boards", "postgresql://boards:***@db/boards"),
    ("postgresql://boards%3AS3CRET@db/boards", "@db/boards"),
    ("postgresql://boards:S3C@R/ET@db/boards", "@db/boards"),
    ("postgresql://boards@db/boards?password=S3CRET", "?password=***"),
    ("postgresql://db/boards?sslmode=require&sslpassword=S3CRET", "?sslmode=require&sslpassword"),
    ("postgresql://db/boards?pass=S3CRET&application_name=api", "&application_name=api"),
    ("postgresql://db/boards?%70assword=S3CRET", "%70assword=***"),
    ("postgresql://db/boards?pass%2577ord=S3CRET", "=***"),
    ("redis://:S3CRET@redis:6379/0", "redis://:***@redis:6379/0"),
    ("redis://default:S3CRET@redis:6379/0", "redis://default:***@redis:6379/0"),
    ("rediss://S3CRET@redis:6380/0", "rediss://***@redis:6380/0"),
    ("redis://redis:6379/0?password=S3CRET", "redis://redis:6379/0?password=***"),
    ("redis://redis/0?token=S3CRET", "?token=***"),
]


@pytest.mark.parametrize(("url", "kept"), URLS)
def test_mask_url_hides_the_secret_wherever_the_url_holds_it(url: str, kept: str) -> None:
    masked = mask_url(url)
    assert "S3" not in masked and "ET@" not in masked, masked
    assert kept in masked, masked


@pytest.mark.parametrize(("url", "kept"), URLS)
def test_scrub_masks_urls_in_any_text(url: str, kept: str) -> None:
    line = scrub(f"cannot connect to '{url}' (attempt 2), Authorization: Bearer S3CRET-TOKEN")
    assert "S3" not in line, line
    assert "(attempt 2)" in line


def test_urls_without_secrets_are_left_alone() -> None:
    for url in ("postgresql://boards@db/boards?sslmode=require", "redis://redis:6379/0"):
        assert mask_url(url) == url
        assert scrub(f"using {url}") == f"using {url}"


def test_sql_and_parameters_are_cut_from_database_errors() -> None:
    engine = create_engine("sqlite://")
    with pytest.raises(Exception) as caught, engine.connect() as conn:
        conn.execute(text("SELECT payload\nFROM nowhere WHERE id = :id"), {"id": "S3CRET"})
    line = one_line(caught.value)
    assert line.startswith("OperationalError: (sqlite3.OperationalError) no such table: nowhere")
    assert "SELECT" not in line and "S3CRET" not in line, line
    assert "[SQL omitted] [parameters omitted]" in line


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """The service's own log configuration, writing to a buffer for the test."""
    root = logging.getLogger()
    handlers, level, factory = list(root.handlers), root.level, logging.getLogRecordFactory()
    stream = io.StringIO()
    configure_logging("debug", stream=stream)
    yield stream
    logging.setLogRecordFactory(factory)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_every_log_line_and_traceback_is_scrubbed(log_stream: io.StringIO) -> None:
    log = logging.getLogger("some.library")
    log.info("connecting to %s", "postgresql://u:S3CRET@db/x?sslpassword=S3CRET")
    try:
        raise ValueError("bad url redis://:S3CRET@redis/0 [SQL: SELECT 'S3CRET']")
    except ValueError:
        log.exception("failed")
    out = log_stream.getvalue()
    assert "S3CRET" not in out, out
    assert "postgresql://u:***@db/x?sslpassword=***" in out
    assert "Traceback" in out and "redis://:***@redis/0" in out


# -- the API as a process, with secrets in its URLs ----------------------------------------------


@dataclass
class Role:
    host: str
    port: int
    database: str
    name: str
    password: str


@pytest.fixture
def own_role(fresh_pg_url: str) -> Iterator[Role]:
    """A login role with a password of its own (with an '@', so URLs must encode it), owning a
    fresh database."""
    url = make_url(fresh_pg_url)
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )
    role = Role(
        str(url.host), int(url.port or 5432), str(url.database), f"r_{uuid.uuid4().hex[:10]}", ""
    )
    role.password = f"Pw@{uuid.uuid4().hex}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role.name), sql.Literal(role.password)
            )
        )
        conn.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                sql.Identifier(role.database), sql.Identifier(role.name)
            )
        )
    yield role
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(role.database))
        )
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role.name)))


def _leaks(text: str, role: Role) -> list[str]:
    secrets = [role.password, quote(role.password, safe=""), role.password[3:], "S3CRET"]
    return [secret for secret in secrets if secret in text]


def _ask(client: Any) -> list[str]:
    """Every answer that could show a URL or a driver's error; checks what must hold."""
    report = client.get("/api/v1/system/health")
    body = report.json()
    # The database answered with the role's password: the URL really carried it.
    assert body["database"]["status"] == "ok", body
    answers = [report.text, client.get("/health/ready").text]
    answers.append(client.post("/api/v1/jobs", json={"payload": "x"}).text)
    # A client that puts a token in the query: the access log masks it.
    client.get("/health", params={"access_token": "S3CRET", "page": "2"})
    return answers


def test_boards_api_shows_no_secret_in_its_log_or_answers(
    own_role: Role, redis_url: str, tmp_path: Path
) -> None:
    """The password in the user-info (percent-encoded '@') and the query string, Redis's in its
    user-info; the API as it runs in the image (migration child, uvicorn's own log handlers)."""
    password = quote(own_role.password, safe="")
    redis = make_url(redis_url)
    port = free_port()
    log = tmp_path / "api.log"
    env = base_env(
        BOARDS_DATABASE_URL=f"postgresql://{own_role.name}:{password}@{own_role.host}:"
        f"{own_role.port}/{own_role.database}?sslpassword=SSLS3CRET",
        BOARDS_REDIS_URL=f"redis://:REDISS3CRET@{redis.host}:{redis.port}/0",
        BOARDS_API_HOST="127.0.0.1",
        BOARDS_API_PORT=str(port),
        BOARDS_LOG_LEVEL="debug",
        BOARDS_RUN_DIR=str(tmp_path / "run"),
    )
    with log.open("wb") as out:
        api = subprocess.Popen([BOARDS, "api"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

            def up() -> bool:
                assert api.poll() is None, log.read_text()
                try:
                    return client.get("/health").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(up, timeout=120, what="the API to answer")
            answers = _ask(client)
    finally:
        stop_process(api)
    output = log.read_text()
    assert "Application startup complete" in output
    assert "/health?access_token=***&page=2" in output, output
    assert _leaks("\n".join(answers), own_role) == [], answers
    assert _leaks(output, own_role) == [], output


def test_the_api_shows_no_secret_from_a_query_string_url(
    own_role: Role, log_stream: io.StringIO
) -> None:
    """The password in the query string under a percent-encoded key; Redis's in its user-info
    and query, on a closed port, so the driver's error is logged."""
    password = quote(own_role.password, safe="")
    database_url = (
        f"postgresql://{own_role.name}@{own_role.host}:{own_role.port}/{own_role.database}"
        f"?application_name=t&%70assword={password}"
    )
    upgrade_to_head(database_url, default_alembic_ini())
    settings = load_settings(
        database_url=database_url,
        redis_url=f"redis://default:REDISS3CRET@127.0.0.1:{free_port()}/0?password=REDISS3CRET",
    )
    with TestClient(create_app(settings)) as client:
        answers = _ask(client)
    output = log_stream.getvalue()
    assert "broker did not answer" in output, output
    assert _leaks("\n".join(answers), own_role) == [], answers
    assert _leaks(output, own_role) == [], output


# -- a job failed by a locked SQLite database ----------------------------------------------------


def test_a_job_failed_by_a_locked_database_says_so_without_sql(
    make_settings: Callable[..., Settings],
    migrated_sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    log_stream: io.StringIO,
) -> None:
    """A second connection holds ``BEGIN EXCLUSIVE`` while the job's retries run out: the job's
    ``error`` names the kind of failure, the log has the driver's text under the job's id, and
    no API answer carries SQL, parameters or the driver's text."""
    real_options = boards.db.engine_options

    def short_lock_wait(url: str, pool_size: int = 5) -> dict[str, Any]:
        # SQLite waits BOARDS' connect timeout for a lock; 0.2 s gives the same error sooner.
        options = real_options(url, pool_size)
        options["connect_args"] = {**options["connect_args"], "timeout": 0.2}
        return options

    monkeypatch.setattr(boards.db, "engine_options", short_lock_wait)
    settings = make_settings(
        database_url=migrated_sqlite_url,
        job_max_retries=2,
        job_retry_min_backoff=0.01,
        job_retry_max_backoff=0.02,
    )
    db = get_database(migrated_sqlite_url)
    job = create_job(db, "x").job
    broker = StubBroker(middleware=[])
    for each in worker_middleware(settings, db, ping=lambda: True, reconcile=None):
        broker.add_middleware(each)
    leases = next(m for m in broker.middleware if isinstance(m, LeaseKeeper))
    locker = sqlite3.connect(
        str(make_url(migrated_sqlite_url).database), isolation_level=None, check_same_thread=False
    )
    locker.execute("BEGIN EXCLUSIVE")
    attempts: list[str] = []

    def body(job_id: str) -> None:
        attempts.append(job_id)
        try:
            process_delivery(db, job_id, lease=15, leases=leases, resend=lambda: None)
        finally:
            if len(attempts) == 3:  # the last attempt: let the give-up be recorded
                locker.execute("ROLLBACK")

    actor = dramatiq.actor(
        body, actor_name=ACTOR_NAME, queue_name=QUEUE_NAME, broker=broker, **job_options(settings)
    )
    answers: list[str] = []
    with TestClient(create_app(settings)) as client:
        # While the lock is held, the API answers 503 and says nothing of why in SQL terms.
        for response in (
            client.get(f"/api/v1/jobs/{job.id}"),
            client.get("/api/v1/system/health"),
            client.get("/health/ready"),
        ):
            assert response.status_code in (200, 503), response.text
            answers.append(response.text)
        actor.send(job.id)
        broker.emit_after("process_boot")
        worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=1)
        worker.start()
        try:
            broker.join(QUEUE_NAME, timeout=30_000, fail_fast=False)
            worker.join()
        finally:
            worker.stop()
        response = client.get(f"/api/v1/jobs/{job.id}")
        answers.append(response.text)
    locker.close()
    assert attempts == [job.id] * 3
    stored = response.json()
    assert (stored["status"], stored["error"]) == (
        "failed",
        "the job failed after 3 attempts: the database was unavailable",
    )
    for answer in answers:
        for internal in ("SQL", "UPDATE", "SELECT", "parameters", "sqlite", "locked", "Trace"):
            assert internal not in answer, answer
        assert "'running'" not in answer, answer
    log = log_stream.getvalue()
    (line,) = [line for line in log.splitlines() if f"job {job.id} failed after" in line]
    assert "(the database was unavailable): OperationalError: (sqlite3.OperationalError) " in line
    assert "database is locked" in line
    assert "Traceback" in log
    assert "UPDATE jobs" not in log and "'running'" not in log, log


def test_the_failure_vocabulary_is_the_documented_one() -> None:
    """docs/operations.md's table of a failed job's reasons is the code's list."""
    doc = (Path(__file__).parents[3] / "docs" / "operations.md").read_text()
    section = doc.split("### Secrets and internals in messages", 1)[1].split("\n### ", 1)[0]
    documented = {line.split("`")[1] for line in section.splitlines() if line.startswith("| `the ")}
    assert documented == {
        middleware.DATABASE_UNAVAILABLE,
        middleware.DATABASE_ERROR,
        middleware.BROKER_UNAVAILABLE,
        middleware.TIME_LIMIT,
        middleware.WORK_FAILED,
    }
