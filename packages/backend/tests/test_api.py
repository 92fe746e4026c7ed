"""The HTTP API on SQLite with FastAPI's TestClient (no broker, or one that is not there)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from types import SimpleNamespace

import pytest
from boards.api.factory import create_app
from boards.db import get_database
from boards.models import Job
from boards.settings import Settings
from fastapi.testclient import TestClient
from sqlalchemy import func, select

UNREACHABLE_PG = "postgresql://boards:secret@nohost.invalid:5432/boards"

MakeSettings = Callable[..., Settings]


def client_for(settings: Settings) -> TestClient:
    return TestClient(create_app(settings))


def count_jobs(url: str) -> int:
    with get_database(url).session() as session:
        return int(session.scalar(select(func.count()).select_from(Job)) or 0)


def test_liveness_never_touches_the_database(make_settings: MakeSettings) -> None:
    with client_for(make_settings(database_url=UNREACHABLE_PG)) as client:
        started = time.monotonic()
        response = client.get("/health")
        assert time.monotonic() - started < 1
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_importing_the_app_connects_to_nothing(h: SimpleNamespace) -> None:
    code = (
        "from fastapi.testclient import TestClient\n"
        "from boards.api.app import app\n"
        "r = TestClient(app).get('/health'); print(r.status_code, r.json())"
    )
    env = h.base_env(
        BOARDS_DATABASE_URL=UNREACHABLE_PG, BOARDS_REDIS_URL="redis://nohost.invalid:6379/0"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "200 {'status': 'ok'}"


def test_system_health_on_a_migrated_database(
    make_settings: MakeSettings, migrated_sqlite_url: str
) -> None:
    with client_for(make_settings(database_url=migrated_sqlite_url)) as client:
        response = client.get("/api/v1/system/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == version("boards-backend")
    assert body["database"] == {"status": "ok", "detail": "sqlite"}
    assert body["broker"]["status"] == "not_configured"
    assert body["migrations"] == {"current": "0001", "head": "0001", "status": "ok", "detail": None}


def test_system_health_reports_pending_migrations(
    make_settings: MakeSettings, sqlite_url: str
) -> None:
    with client_for(make_settings(database_url=sqlite_url)) as client:
        body = client.get("/api/v1/system/health").json()
    assert body["status"] == "degraded"
    assert body["database"]["status"] == "ok"
    assert body["migrations"]["current"] is None
    assert body["migrations"]["head"] == "0001"
    assert body["migrations"]["status"] == "pending"


def test_system_health_with_the_database_down_is_quick(
    make_settings: MakeSettings, h: SimpleNamespace
) -> None:
    url = f"postgresql://boards:secret@127.0.0.1:{h.free_port()}/boards"
    with client_for(make_settings(database_url=url)) as client:
        started = time.monotonic()
        response = client.get("/api/v1/system/health")
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"]["status"] == "down"
    assert "secret" not in response.text
    assert body["migrations"]["status"] == "unknown"
    assert elapsed < 10


def test_readiness_needs_the_schema_at_head(
    make_settings: MakeSettings, sqlite_url: str, h: SimpleNamespace
) -> None:
    from boards.migrations import upgrade_to_head

    with client_for(make_settings(database_url=sqlite_url)) as client:
        response = client.get("/health/ready")
        assert response.status_code == 503
        assert response.json()["status"] == "not_ready"
        assert "schema not at head" in response.json()["reasons"][0]

        upgrade_to_head(sqlite_url, h.ALEMBIC_INI)
        response = client.get("/health/ready")
        assert response.status_code == 200
        assert response.json() == {"status": "ready", "reasons": []}


def test_readiness_fails_when_the_broker_does_not_answer(
    make_settings: MakeSettings, migrated_sqlite_url: str, h: SimpleNamespace
) -> None:
    redis_url = f"redis://127.0.0.1:{h.free_port()}/0"  # nothing listens there
    settings = make_settings(database_url=migrated_sqlite_url, redis_url=redis_url)
    with client_for(settings) as client:
        response = client.get("/health/ready")
        health = client.get("/api/v1/system/health").json()
    assert response.status_code == 503
    assert response.json()["reasons"][0].startswith("broker down")
    assert health["broker"]["status"] == "down"
    assert health["status"] == "degraded"


def test_readiness_fails_when_the_database_is_down(
    make_settings: MakeSettings, h: SimpleNamespace
) -> None:
    url = f"postgresql://boards:secret@127.0.0.1:{h.free_port()}/boards"
    with client_for(make_settings(database_url=url)) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["reasons"][0].startswith("database down")


def test_unknown_job_is_404(make_settings: MakeSettings, migrated_sqlite_url: str) -> None:
    with client_for(make_settings(database_url=migrated_sqlite_url)) as client:
        response = client.get("/api/v1/jobs/00000000-0000-0000-0000-000000000000")
        assert client.get("/api/v1/jobs/not-a-uuid").status_code == 404
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"payload": 12},
        {"payload": "x", "delay_seconds": -1},
        {"payload": "x", "delay_seconds": 30.5},
        {"payload": "x", "delay_seconds": "soon"},
    ],
)
def test_bad_job_bodies_are_422(
    make_settings: MakeSettings, migrated_sqlite_url: str, body: dict[str, object]
) -> None:
    settings = make_settings(database_url=migrated_sqlite_url, redis_url="redis://127.0.0.1:1/0")
    with client_for(settings) as client:
        response = client.post("/api/v1/jobs", json=body)
    assert response.status_code == 422
    assert count_jobs(migrated_sqlite_url) == 0


def test_job_without_a_broker_is_503_and_not_stored(
    make_settings: MakeSettings, migrated_sqlite_url: str
) -> None:
    with client_for(make_settings(database_url=migrated_sqlite_url)) as client:
        response = client.post("/api/v1/jobs", json={"payload": "hello"})
    assert response.status_code == 503
    assert response.json()["error"] == "broker_not_configured"
    assert "BOARDS_REDIS_URL" in response.json()["detail"]
    assert count_jobs(migrated_sqlite_url) == 0


def test_job_with_an_unreachable_broker_is_503_and_marked_failed(
    make_settings: MakeSettings, migrated_sqlite_url: str, h: SimpleNamespace
) -> None:
    redis_url = f"redis://127.0.0.1:{h.free_port()}/0"
    settings = make_settings(database_url=migrated_sqlite_url, redis_url=redis_url)
    with client_for(settings) as client:
        response = client.post("/api/v1/jobs", json={"payload": "hello"})
    assert response.status_code == 503
    assert response.json()["error"] == "broker_unavailable"
    with get_database(migrated_sqlite_url).session() as session:
        jobs = session.scalars(select(Job)).all()
    assert [job.status for job in jobs] == ["failed"]
    assert jobs[0].error is not None and jobs[0].error.startswith("not enqueued")
