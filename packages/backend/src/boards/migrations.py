"""Schema migrations: upgrade to head (serialised on PostgreSQL) and revision look-ups.

alembic is imported inside the functions that need it: the API imports this module for
:func:`current_revision` on every start, and alembic would add a third of its import time.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

from boards.db import new_engine

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger("boards.migrations")

#: pg_advisory_lock key held while migrating: int.from_bytes(b"boards") (fits a bigint).
ADVISORY_LOCK_KEY = int.from_bytes(b"boards", "big")
VERSION_TABLE = "alembic_version"


class MigrationError(RuntimeError):
    """Migrations could not be applied or looked up."""


def alembic_config(ini_path: Path, connection: Connection | None = None) -> Config:
    if not ini_path.is_file():
        raise MigrationError(f"alembic.ini not found at {ini_path} (set BOARDS_ALEMBIC_INI)")
    from alembic.config import Config

    config = Config(str(ini_path))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=8)
def head_revision(ini_path: Path) -> str | None:
    """The head revision of the migration scripts (cached: scripts don't change at run time)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(ini_path))
    return script.get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The revision the database at ``connection`` is at (None: not migrated)."""
    # Same answer as MigrationContext.get_current_revision(), without its log lines on every probe.
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()  # noqa: S608
    if len(rows) > 1:
        raise MigrationError(f"several schema heads in {VERSION_TABLE}: {sorted(rows)}")
    return rows[0] if rows else None


def upgrade_to_head(database_url: str, ini_path: Path) -> str | None:
    """Upgrade the database to head; returns the head revision.

    On PostgreSQL a session-level ``pg_advisory_lock`` is held for the whole upgrade, so several
    API containers starting at once against one fresh database take turns: the first migrates,
    the others find the schema at head and do nothing.
    """
    head = head_revision(ini_path)
    engine = new_engine(database_url)
    try:
        with engine.connect() as conn:
            locked = conn.dialect.name == "postgresql"
            if locked:
                logger.info("waiting for the migration lock")
                conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
                conn.commit()
            try:
                before = current_revision(conn)
                conn.commit()
                if before == head:
                    logger.info("database schema is at head %s", head)
                    return head
                logger.info("upgrading database schema from %s to %s", before, head)
                from alembic import command

                command.upgrade(alembic_config(ini_path, conn), "head")
                conn.commit()
                logger.info("database schema upgraded to %s", head)
                return head
            finally:
                if locked:
                    _unlock(conn)
    finally:
        engine.dispose()


def _unlock(conn: Connection) -> None:
    try:
        conn.rollback()
        conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
        conn.commit()
    except Exception:  # the lock goes with the connection anyway
        logger.debug("could not release the migration lock explicitly", exc_info=True)


def downgrade(database_url: str, ini_path: Path, revision: str = "base") -> None:
    """Downgrade to ``revision`` (tests and operators; the service never downgrades)."""
    engine = new_engine(database_url)
    try:
        from alembic import command

        with engine.connect() as conn:
            command.downgrade(alembic_config(ini_path, conn), revision)
            conn.commit()
    finally:
        engine.dispose()
