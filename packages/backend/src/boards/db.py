"""Sync SQLAlchemy engine, created lazily, one per process and URL."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Connection, Engine, create_engine, exc, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from boards import defaults

if TYPE_CHECKING:
    from boards.settings import Settings

#: Seconds to wait for a PostgreSQL connection (and for a locked SQLite file).
CONNECT_TIMEOUT = 3

#: Seconds a request waits for a free connection of a full pool before it gives up (a 503).
POOL_TIMEOUT = CONNECT_TIMEOUT + 2

#: The errors that mean "the database did not answer" (down, restarting, pool exhausted), as
#: opposed to a statement that is wrong: callers answer 503 or retry for these only.
UNAVAILABLE: tuple[type[Exception], ...] = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.TimeoutError,
)


def engine_options(
    url: str,
    pool_size: int = defaults.DATABASE_POOL_SIZE,
    statement_timeout: float | None = None,
    application_name: str = "boards",
) -> dict[str, Any]:
    """Keyword arguments for :func:`sqlalchemy.create_engine` for ``url``.

    A fixed pool, no overflow: connections opened for a burst and closed after it (the overflow)
    cost PostgreSQL a backend process each, and under load that churn was most of a request's
    time; past the pool, requests wait (up to ``pool_timeout``, then 503). No pre-ping either: it
    costs a round trip per checkout. A connection that died (PostgreSQL restarted) fails the one
    statement that finds out, and SQLAlchemy then discards every connection of that pool: the
    API answers that request 503, the worker retries it.

    ``statement_timeout`` (seconds) becomes PostgreSQL's own ``statement_timeout`` for every
    session of the pool, lock waits included: a locked or overloaded table fails the statement
    (a 503, or a retry) instead of holding a request, and the connection, for as long as the
    lock lasts. ``application_name`` names the role in ``pg_stat_activity``, so an operator
    can count each role's connections against its budget (docs/operations.md).
    """
    if url.startswith("sqlite"):
        return {
            "connect_args": {"check_same_thread": False, "timeout": POOL_TIMEOUT},
        }
    connect_args: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT,
        "application_name": application_name,
        # No server-side prepared statements: psycopg can lose track of one whose PREPARE the
        # statement timeout cancelled ("prepared statement _pg3_0 does not exist" on that
        # connection's next use: a 500), and poolers in transaction mode cannot keep them.
        "prepare_threshold": None,
    }
    if statement_timeout is not None:
        connect_args["options"] = f"-c statement_timeout={max(1, round(statement_timeout * 1000))}"
    return {
        "pool_size": pool_size,
        "max_overflow": 0,
        "pool_timeout": POOL_TIMEOUT,
        "pool_recycle": 1800,
        "connect_args": connect_args,
    }


def ensure_sqlite_dir(url: str) -> None:
    """Create the directory of a SQLite database file if missing."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return
    if parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return
    Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def new_engine(url: str, pool_size: int = defaults.DATABASE_POOL_SIZE, **options: Any) -> Engine:
    """An engine for ``url``; ``options``: those of :func:`engine_options`."""
    ensure_sqlite_dir(url)
    return create_engine(url, **engine_options(url, pool_size, **options))


class _Pool(NamedTuple):
    engine: Engine
    autocommit: Engine
    sessions: sessionmaker[Session]


class Database:
    """The engine and session factory for one URL; nothing connects until first use."""

    def __init__(
        self,
        url: str,
        pool_size: int = defaults.DATABASE_POOL_SIZE,
        **options: Any,
    ) -> None:
        self.url = url
        self.pool_size = pool_size
        self.options = options
        # One reference, replaced whole: a thread never sees an engine without its siblings.
        self._pool: _Pool | None = None
        self._lock = threading.Lock()

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``: the dialect's own name for the URL."""
        return make_url(self.url).get_backend_name()

    def _get(self) -> _Pool:
        pool = self._pool
        if pool is None:
            with self._lock:
                pool = self._pool
                if pool is None:
                    engine = new_engine(self.url, self.pool_size, **self.options)
                    pool = self._pool = _Pool(
                        engine,
                        engine.execution_options(isolation_level="AUTOCOMMIT"),
                        sessionmaker(engine, expire_on_commit=False),
                    )
        return pool

    @property
    def engine(self) -> Engine:
        return self._get().engine

    @property
    def autocommit(self) -> Engine:
        """The same pool, each statement its own transaction: a write of one statement costs one
        round trip instead of three (BEGIN, the statement, COMMIT)."""
        return self._get().autocommit

    def session(self) -> Session:
        return self._get().sessions()

    def dispose(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.engine.dispose()


_databases: dict[str, Database] = {}
_databases_lock = threading.Lock()


def get_database(
    url: str, pool_size: int = defaults.DATABASE_POOL_SIZE, **options: Any
) -> Database:
    """The process-wide :class:`Database` for ``url`` (the first call's options hold)."""
    with _databases_lock:
        database = _databases.get(url)
        if database is None:
            database = _databases[url] = Database(url, pool_size, **options)
        return database


def database_for(settings: Settings, role: str) -> Database:
    """The process-wide :class:`Database` of a serving role (``api``, ``worker``), as
    configured; its sessions are named ``boards-<role>`` in ``pg_stat_activity``."""
    return get_database(
        settings.effective_database_url,
        settings.database_pool_size,
        statement_timeout=settings.database_statement_timeout,
        application_name=f"boards-{role}",
    )


def try_xact_lock(conn: Connection, key: int) -> bool:
    """PostgreSQL's ``pg_try_advisory_xact_lock(key)``: whether this transaction now holds the
    lock (until it ends) or another one does. True on SQLite, a single machine's database, where
    callers rely on their per-row guards alone."""
    if conn.dialect.name != "postgresql":
        return True
    return bool(conn.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key}))
