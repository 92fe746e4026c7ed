"""Sync SQLAlchemy engine, created lazily, one per process and URL."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, exc, make_url
from sqlalchemy.orm import Session, sessionmaker

#: Seconds to wait for a PostgreSQL connection (and for a locked SQLite file).
CONNECT_TIMEOUT = 3

#: The errors that mean "the database did not answer" (down, restarting, pool exhausted), as
#: opposed to a statement that is wrong: callers answer 503 or retry for these only.
UNAVAILABLE: tuple[type[Exception], ...] = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.TimeoutError,
)


def engine_options(url: str) -> dict[str, Any]:
    """Keyword arguments for :func:`sqlalchemy.create_engine` for ``url``."""
    if url.startswith("sqlite"):
        return {
            "pool_pre_ping": True,
            "connect_args": {"check_same_thread": False, "timeout": CONNECT_TIMEOUT + 2},
        }
    return {
        "pool_pre_ping": True,
        "pool_timeout": CONNECT_TIMEOUT + 2,
        "pool_recycle": 1800,
        "connect_args": {"connect_timeout": CONNECT_TIMEOUT, "application_name": "boards"},
    }


def ensure_sqlite_dir(url: str) -> None:
    """Create the directory of a SQLite database file if missing."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return
    if parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return
    Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def new_engine(url: str) -> Engine:
    ensure_sqlite_dir(url)
    return create_engine(url, **engine_options(url))


class Database:
    """The engine and session factory for one URL; nothing connects until first use."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        self._lock = threading.Lock()

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``: the dialect's own name for the URL."""
        return make_url(self.url).get_backend_name()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = new_engine(self.url)
                    self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        return self._engine

    def session(self) -> Session:
        self.engine  # noqa: B018 (creates the session factory)
        assert self._sessions is not None
        return self._sessions()

    def dispose(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
            self._engine = None
            self._sessions = None


_databases: dict[str, Database] = {}
_databases_lock = threading.Lock()


def get_database(url: str) -> Database:
    """The process-wide :class:`Database` for ``url``."""
    with _databases_lock:
        database = _databases.get(url)
        if database is None:
            database = _databases[url] = Database(url)
        return database
