"""The HTTP API on SQLite with FastAPI's TestClient (no broker, or one that is not there)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import version

from boards.api.factory import create_app
from boards.migrations import head_revision
from boards.settings import Settings, default_alembic_ini
from boards_testing.processes import base_env, free_port
from fastapi.testclient import TestClient

#: The schema revision every migration here ends at.
HEAD = head_revision(default_alembic_ini())

UNREACHABLE_PG = "postgresql://boards:secret@nohost.invalid:5432/boards"

MakeSettings = Callable[..., Settings]


def client_for(settings: Settings) -> TestClient:
    return TestClient(create_app(settings))


def test_liveness_never_touches_the_database(make_settings: MakeSettings) -> None:
    # A database host that does not resolve: any attempt to connect would fail the request.
    with client_for(make_settings(database_url=UNREACHABLE_PG)) as client:
        response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_importing_the_app_connects_to_nothing() -> None:
    code = (
        "from fastapi.testclient import TestClient\n"
        "from boards.api.app import app\n"
        "r = TestClient(app).get('/health'); print(r.status_code, r.json())"
    )
    env = base_env(
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
    assert body["migrations"] == {"current": HEAD, "head": HEAD, "status": "ok", "detail": None}


def test_system_health_reports_pending_migrations(
    make_settings: MakeSettings, sqlite_url: str
) -> None:
    with client_for(make_settings(database_url=sqlite_url)) as client:
        body = client.get("/api/v1/system/health").json()
    assert body["status"] == "degraded"
    assert body["database"]["status"] == "ok"
    assert body["migrations"]["current"] is None
    assert body["migrations"]["head"] == HEAD
    assert body["migrations"]["status"] == "pending"


def test_system_health_with_the_database_down_names_no_driver_error(
    make_settings: MakeSettings,
) -> None:
    url = f"postgresql://boards:secret@127.0.0.1:{free_port()}/boards"
    with client_for(make_settings(database_url=url)) as client:
        response = client.get("/api/v1/system/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"] == {"status": "down", "detail": "database did not answer"}
    assert "secret" not in response.text
    assert "psycopg" not in response.text and "Operational" not in response.text
    assert body["migrations"]["status"] == "unknown"


def test_readiness_needs_the_schema_at_head(make_settings: MakeSettings, sqlite_url: str) -> None:
    from boards.migrations import upgrade_to_head

    with client_for(make_settings(database_url=sqlite_url)) as client:
        response = client.get("/health/ready")
        assert response.status_code == 503
        assert response.json()["status"] == "not_ready"
        assert "schema not at head" in response.json()["reasons"][0]

        upgrade_to_head(sqlite_url, default_alembic_ini())
        response = client.get("/health/ready")
        assert response.status_code == 200
        assert response.json() == {"status": "ready", "reasons": []}


def test_readiness_fails_when_the_broker_does_not_answer(
    make_settings: MakeSettings, migrated_sqlite_url: str
) -> None:
    redis_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings = make_settings(database_url=migrated_sqlite_url, redis_url=redis_url)
    with client_for(settings) as client:
        response = client.get("/health/ready")
        health = client.get("/api/v1/system/health").json()
    assert response.status_code == 503
    assert response.json()["reasons"][0].startswith("broker down")
    assert health["broker"]["status"] == "down"
    assert health["status"] == "degraded"


def test_readiness_fails_when_the_database_is_down(make_settings: MakeSettings) -> None:
    url = f"postgresql://boards:secret@127.0.0.1:{free_port()}/boards"
    with client_for(make_settings(database_url=url)) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["reasons"][0].startswith("database down")
