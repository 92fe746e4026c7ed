"""Shared fixtures for the backend tests.

Real PostgreSQL and Redis come from the ``boards_testing`` pytest plugin (packages/testing):
``postgres_url``, ``redis_url`` (session containers on 127.0.0.1) and ``redis_image``. Helpers
are plain modules to import: ``boards_testing.processes`` (the venv's commands, free ports,
``serve_api`` for a ``boards api`` server, stopping processes) and ``boards_testing.waiting``.
"""

from __future__ import annotations

import io
import logging
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from boards.db import Database, get_database
from boards.logs import configure_logging
from boards.migrations import upgrade_to_head
from boards.settings import Settings, default_alembic_ini, load_settings
from sqlalchemy import make_url

ALEMBIC_INI = default_alembic_ini()


@pytest.fixture(autouse=True)
def _clean_boards_env(no_boards_settings: None) -> None:
    """No BOARDS_* variable of the developer's shell leaks into a test."""


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'boards.db'}"


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        overrides.setdefault("data_dir", tmp_path / "data")
        overrides.setdefault("run_dir", tmp_path / "run")
        return load_settings(**overrides)

    return make


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


# Migrated databases are copies of one migrated once per session: running the migrations for
# every test cost the fast tier more CPU than the tests themselves.


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "boards.db"
    upgrade_to_head(f"sqlite:///{path}", ALEMBIC_INI)
    return path


@pytest.fixture
def migrated_sqlite_url(sqlite_url: str, sqlite_template: Path) -> str:
    target = Path(make_url(sqlite_url).database or "")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sqlite_template, target)
    return sqlite_url


# -- PostgreSQL: one fresh database per test on the plugin's session container -------------------


def _admin_conninfo(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )


def _new_pg_database(postgres_url: str, template: str | None = None) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(_admin_conninfo(postgres_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    return make_url(postgres_url).set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(url: str) -> None:
    # Close the test's pooled connections first: DROP ... WITH (FORCE) would terminate them and
    # then poll, 100 ms at a time, until their backends have gone.
    get_database(url).dispose()
    with psycopg.connect(_admin_conninfo(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


@pytest.fixture
def fresh_pg_url(postgres_url: str) -> Iterator[str]:
    """A new, empty database on the session PostgreSQL server; dropped afterwards."""
    url = _new_pg_database(postgres_url)
    yield url
    _drop_pg_database(url)


@pytest.fixture(scope="session")
def pg_template(postgres_url: str) -> Iterator[str]:
    """A database migrated once, for CREATE DATABASE ... TEMPLATE (no connection left open)."""
    url = _new_pg_database(postgres_url)
    upgrade_to_head(url, ALEMBIC_INI)
    yield str(make_url(url).database)
    _drop_pg_database(url)


@pytest.fixture
def migrated_pg_url(postgres_url: str, pg_template: str) -> Iterator[str]:
    """A fresh database at the head revision, copied from the session's template."""
    url = _new_pg_database(postgres_url, template=pg_template)
    yield url
    _drop_pg_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated_url(request: pytest.FixtureRequest) -> str:
    """A migrated database on each backend: the test runs once on SQLite, once on PostgreSQL."""
    fixture = "migrated_sqlite_url" if request.param == "sqlite" else "migrated_pg_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def db(migrated_url: str) -> Database:
    return get_database(migrated_url)
