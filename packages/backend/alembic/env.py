"""Alembic environment for boards.

The database URL comes from the app's settings (never from alembic.ini). A caller may pass an
open connection in ``config.attributes["connection"]`` (``boards.migrations`` does, holding the
PostgreSQL advisory lock on it).
"""

from __future__ import annotations

import logging

from alembic import context
from boards.db import new_engine
from boards.logs import configure_logging
from boards.models import Base
from boards.settings import load_settings_or_exit
from sqlalchemy import Connection, make_url

config = context.config
target_metadata = Base.metadata


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    settings = load_settings_or_exit()
    context.configure(
        url=settings.effective_database_url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=make_url(settings.effective_database_url).get_backend_name() == "sqlite",
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
        return
    # Plain `alembic ...` from a shell: settings from the environment, our log format.
    settings = load_settings_or_exit()
    if not logging.getLogger().handlers:
        configure_logging(settings.log_level)
    engine = new_engine(settings.effective_database_url)
    try:
        with engine.connect() as conn:
            _configure_and_run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
