"""Migrations up and down on SQLite and PostgreSQL; concurrent upgrades serialise on PostgreSQL."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from boards.db import new_engine
from boards.migrations import (
    MigrationError,
    current_revision,
    downgrade,
    head_revision,
    upgrade_to_head,
)
from boards.models import Base
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


def _up_down_up(url: str, h: SimpleNamespace) -> None:
    head = head_revision(h.ALEMBIC_INI)
    assert head == "0002"
    assert _state(url) == (None, set())

    assert upgrade_to_head(url, h.ALEMBIC_INI) == head
    assert _state(url) == (head, {"alembic_version", "jobs"})
    assert _model_diff(url) == [], "the migrations create exactly what the models describe"

    assert upgrade_to_head(url, h.ALEMBIC_INI) == head  # idempotent

    downgrade(url, h.ALEMBIC_INI, "base")
    revision, tables = _state(url)
    assert revision is None
    assert "jobs" not in tables

    upgrade_to_head(url, h.ALEMBIC_INI)
    assert _state(url)[0] == head


def test_up_down_up_on_sqlite(sqlite_url: str, h: SimpleNamespace) -> None:
    _up_down_up(sqlite_url, h)


def test_up_down_up_on_postgresql(fresh_pg_url: str, h: SimpleNamespace) -> None:
    _up_down_up(fresh_pg_url, h)


def test_missing_alembic_ini_is_a_clear_error(sqlite_url: str) -> None:
    with pytest.raises(MigrationError, match="BOARDS_ALEMBIC_INI"):
        upgrade_to_head(sqlite_url, Path("/nonexistent/alembic.ini"))


def test_concurrent_upgrades_end_with_one_schema(fresh_pg_url: str, h: SimpleNamespace) -> None:
    """Three `boards migrate` at once on one fresh database: one migrates, two wait and skip."""
    env = h.base_env(BOARDS_DATABASE_URL=fresh_pg_url)
    procs = [
        subprocess.Popen(
            [h.BOARDS, "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=180)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], outputs
    assert sum("upgrading database schema from None" in out for out in outputs) == 1, outputs
    assert sum("database schema is at head 0002" in out for out in outputs) == 2, outputs

    with _connect(fresh_pg_url) as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
        jobs_tables = conn.execute(
            text("SELECT count(*) FROM pg_tables WHERE tablename = 'jobs'")
        ).scalar_one()
    assert versions == [("0002",)]
    assert jobs_tables == 1
