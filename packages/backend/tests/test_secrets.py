"""No password, token or SQL in a message: the masking function, the log formatter, and the
API's start-up log and health answers with secrets in every part of its URLs (real PostgreSQL,
real Redis, `boards api` as a process)."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest
from boards.api.factory import create_app
from boards.logs import one_line
from boards.migrations import upgrade_to_head
from boards.redact import mask_url, scrub
from boards.settings import default_alembic_ini, load_settings
from boards.workers import middleware
from boards_testing.processes import free_port, serve_api
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
    with (
        serve_api(
            tmp_path,
            timeout=120,
            BOARDS_DATABASE_URL=f"postgresql://{own_role.name}:{password}@{own_role.host}:"
            f"{own_role.port}/{own_role.database}?sslpassword=SSLS3CRET",
            BOARDS_REDIS_URL=f"redis://:REDISS3CRET@{redis.host}:{redis.port}/0",
            BOARDS_LOG_LEVEL="debug",
        ) as api,
        httpx.Client(base_url=api.url, timeout=10) as client,
    ):
        answers = _ask(client)
    output = api.log.read_text()
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
