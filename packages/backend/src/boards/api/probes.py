"""What the health routes report: the database, the schema revision and the broker.

Details name the state, never the driver's message (that goes to the log).
"""

from __future__ import annotations

import logging
from typing import Literal

from sqlalchemy import text

from boards import version
from boards.api.deps import Services
from boards.api.schemas import ComponentStatus, MigrationStatus, SystemHealth
from boards.logs import one_line
from boards.migrations import current_revision, head_revision
from boards.queue import BrokerUnavailable

logger = logging.getLogger("boards.api")

#: Milliseconds a health probe's SQL statement may take on PostgreSQL.
PROBE_STATEMENT_TIMEOUT_MS = 3000


def probe_database(services: Services) -> tuple[ComponentStatus, MigrationStatus]:
    """One short connection: reachability and the schema revision."""
    head: str | None = None
    head_error: str | None = None
    try:
        head = head_revision(services.settings.alembic_ini)
    except Exception as exc:
        logger.error("health: cannot read the migration scripts: %s", one_line(exc))
        head_error = "migration scripts not readable"
    try:
        with services.database.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"SET LOCAL statement_timeout = {PROBE_STATEMENT_TIMEOUT_MS}"))
            conn.execute(text("SELECT 1"))
            current = current_revision(conn)
            conn.rollback()
    except Exception as exc:
        logger.warning("health: database did not answer: %s", one_line(exc))
        return (
            ComponentStatus(status="down", detail="database did not answer"),
            MigrationStatus(current=None, head=head, status="unknown", detail="database down"),
        )
    database = ComponentStatus(status="ok", detail=services.database.backend)
    if head_error is not None:
        return database, MigrationStatus(
            current=current, head=None, status="unknown", detail=head_error
        )
    state: Literal["ok", "pending"] = "ok" if current == head else "pending"
    return database, MigrationStatus(current=current, head=head, status=state)


def probe_broker(services: Services) -> ComponentStatus:
    if not services.queue.configured:
        return ComponentStatus(status="not_configured", detail="BOARDS_REDIS_URL is not set")
    try:
        services.queue.ping()
    except BrokerUnavailable as exc:
        logger.warning("health: %s", one_line(exc))
        return ComponentStatus(status="down", detail="broker did not answer")
    return ComponentStatus(status="ok", detail="redis")


def system_health(services: Services) -> SystemHealth:
    database, migrations = probe_database(services)
    broker = probe_broker(services)
    healthy = database.status == "ok" and migrations.status == "ok" and broker.status != "down"
    return SystemHealth(
        status="ok" if healthy else "degraded",
        version=version(),
        database=database,
        broker=broker,
        migrations=migrations,
    )


def readiness_reasons(report: SystemHealth) -> list[str]:
    """Why the API should get no traffic now (empty: ready)."""
    reasons: list[str] = []
    if report.database.status != "ok":
        reasons.append(f"database down: {report.database.detail}")
    elif report.migrations.status != "ok":
        reasons.append(
            f"schema not at head (current {report.migrations.current}, "
            f"head {report.migrations.head})"
            + (f": {report.migrations.detail}" if report.migrations.detail else "")
        )
    if report.broker.status == "down":
        reasons.append(f"broker down: {report.broker.detail}")
    return reasons
