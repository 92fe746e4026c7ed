"""Database models (SQLAlchemy 2 declarative). Portable between SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp; SQLite hands back naive values, which are UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class JobStatus:
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    FINAL = frozenset({SUCCEEDED, FAILED})
    ALL = (QUEUED, RUNNING, SUCCEEDED, FAILED)


#: Rows in a final state: the only ones retention's partial index on ``finished_at`` holds.
_FINISHED = text("finished_at IS NOT NULL")


class Job(Base):
    """One job. The row is the truth; a queue message only says "look at this row".

    Delivery bookkeeping: ``attempts`` counts the deliveries that claimed the job (also the
    fencing token of the current one), ``lease_expires_at`` is when a running job's worker is
    presumed dead unless it renews, ``enqueued_at`` is when a message was last sent (or last seen
    in Redis) for a queued job, ``redeliveries`` counts the messages the reconciler re-sent.
    """

    __tablename__ = "jobs"
    # One index on status: (status, enqueued_at) serves the status-only look-ups too, and every
    # status change writes each index that holds status once more.
    # Retention deletes the oldest finished rows: a partial index holds those alone, so its
    # look-ups never read the live (queued, running) part of the table.
    __table_args__ = (
        Index("ix_jobs_status_enqueued_at", "status", "enqueued_at"),
        Index(
            "ix_jobs_finished_at",
            "finished_at",
            postgresql_where=_FINISHED,
            sqlite_where=_FINISHED,
        ),
        UniqueConstraint("idempotency_key", name="uq_jobs_idempotency_key"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    payload: Mapped[str] = mapped_column(Text, nullable=False)
    delay_seconds: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    request_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    redeliveries: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    enqueued_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), nullable=False, default=utcnow, onupdate=utcnow
    )
