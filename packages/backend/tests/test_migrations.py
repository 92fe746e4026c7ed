"""Migrations up and down on SQLite and PostgreSQL; concurrent upgrades serialise on PostgreSQL."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from boards.db import new_engine
from boards.migrations import (
    ADVISORY_LOCK_KEY,
    MigrationError,
    current_revision,
    downgrade,
    head_revision,
    upgrade_to_head,
)
from boards.models import Base
from boards.settings import default_alembic_ini
from boards_testing.processes import BOARDS, base_env
from boards_testing.waiting import wait_for
from sqlalchemy import Connection, inspect, text


@contextmanager
def _connect(url: str) -> Iterator[Connection]:
    """One connection on an engine of its own, disposed afterwards."""
    engine = new_engine(url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _state(url: str) -> tuple[str | None, set[str]]:
    with _connect(url) as conn:
        return current_revision(conn), set(inspect(conn).get_table_names())


def _model_diff(url: str) -> list[object]:
    with _connect(url) as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def _up_down_up(url: str) -> None:
    head = head_revision(default_alembic_ini())
    assert head == "0003"
    assert _state(url) == (None, set())

    assert upgrade_to_head(url, default_alembic_ini()) == head
    assert _state(url) == (head, {"alembic_version", "jobs"})
    assert _model_diff(url) == [], "the migrations create exactly what the models describe"

    assert upgrade_to_head(url, default_alembic_ini()) == head  # idempotent

    downgrade(url, default_alembic_ini(), "base")
    revision, tables = _state(url)
    assert revision is None
    assert "jobs" not in tables

    upgrade_to_head(url, default_alembic_ini())
    assert _state(url)[0] == head


def test_up_down_up_on_sqlite(sqlite_url: str) -> None:
    _up_down_up(sqlite_url)


def test_up_down_up_on_postgresql(fresh_pg_url: str) -> None:
    _up_down_up(fresh_pg_url)


@pytest.mark.parametrize("url", ["migrated_sqlite_url", "migrated_pg_url"])
def test_jobs_finished_before_0002_get_a_finish_time_for_retention(
    url: str, request: pytest.FixtureRequest
) -> None:
    """Rows finished before revision 0002 had no ``finished_at``: 0003 takes their last update,
    so retention deletes them in time instead of never."""
    database_url: str = request.getfixturevalue(url)
    downgrade(database_url, default_alembic_ini(), "0002")
    with _connect(database_url) as conn:
        conn.execute(
            text(
                "INSERT INTO jobs (id, payload, delay_seconds, status, attempts, redeliveries,"
                " enqueued_at, created_at, updated_at) VALUES (:id, 'x', 0, :status, 1, 0,"
                " :at, :at, :at)"
            ),
            [
                {"id": "old-done", "status": "succeeded", "at": "2020-01-01 00:00:00+00:00"},
                {"id": "old-queued", "status": "queued", "at": "2020-01-01 00:00:00+00:00"},
            ],
        )
        conn.commit()
    upgrade_to_head(database_url, default_alembic_ini())
    with _connect(database_url) as conn:
        rows = dict(conn.execute(text("SELECT id, finished_at FROM jobs ORDER BY id")).all())
    assert rows["old-queued"] is None
    assert str(rows["old-done"]).startswith("2020-01-01 00:00:00")


def test_missing_alembic_ini_is_a_clear_error(sqlite_url: str) -> None:
    with pytest.raises(MigrationError, match="BOARDS_ALEMBIC_INI"):
        upgrade_to_head(sqlite_url, Path("/nonexistent/alembic.ini"))


def test_concurrent_upgrades_take_turns_on_the_advisory_lock(fresh_pg_url: str) -> None:
    """Three `boards migrate` at once on one fresh database: all three queue on the lock the
    test holds; released, one migrates and two find the schema at head."""
    key = ADVISORY_LOCK_KEY
    waiting_sql = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND classid = :high AND objid = :low"
    )
    with _connect(fresh_pg_url) as holder:
        holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        holder.commit()
        env = base_env(BOARDS_DATABASE_URL=fresh_pg_url)
        procs = [
            subprocess.Popen(
                [BOARDS, "migrate"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(3)
        ]
        bounds = {"high": key >> 32, "low": key & 0xFFFFFFFF}
        wait_for(
            lambda: holder.execute(waiting_sql, bounds).scalar_one() == 3 or holder.rollback(),
            timeout=120,
            what="three migrations waiting for the advisory lock",
        )
        holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        holder.commit()
    outputs = [proc.communicate(timeout=180)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], outputs
    assert sum("upgrading database schema from None" in out for out in outputs) == 1, outputs
    at_head = f"database schema is at head {head_revision(default_alembic_ini())}"
    assert sum(at_head in out for out in outputs) == 2, outputs

    with _connect(fresh_pg_url) as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        jobs_tables = conn.execute(
            text("SELECT count(*) FROM pg_tables WHERE tablename = 'jobs'")
        ).scalar_one()
    assert versions == [(head_revision(default_alembic_ini()),)]
    assert jobs_tables == 1
