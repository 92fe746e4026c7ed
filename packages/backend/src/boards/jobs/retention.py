"""Retention: finished jobs (``succeeded``, ``failed``) are deleted once they are older than
BOARDS_JOB_RETENTION, in bounded batches, by the reconciler loop
(:mod:`boards.workers.reconciler`). A deleted job is gone for good: its ``GET`` answers 404 and
its ``Idempotency-Key`` is free again."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, select

from boards.db import try_xact_lock
from boards.models import Job, JobStatus

#: pg_try_advisory_xact_lock key of a pruning batch: int.from_bytes(b"boards/p").
LOCK_KEY = int.from_bytes(b"boards/p", "big")


def try_lock_batch(conn: Connection) -> bool:
    """One replica prunes at a time (PostgreSQL), until ``conn``'s transaction ends; another
    replica that finds the lock taken leaves the work to it."""
    return try_xact_lock(conn, LOCK_KEY)


def prune_finished(conn: Connection, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` jobs that finished before ``cutoff``, oldest first; how many.

    The partial index on ``finished_at`` (only finished rows) finds them without reading the
    live part of the table; ``SKIP LOCKED`` passes over a row another transaction holds.
    """
    doomed = (
        select(Job.id)
        .where(Job.finished_at < cutoff, Job.status.in_(JobStatus.FINAL))
        .order_by(Job.finished_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        doomed = doomed.with_for_update(skip_locked=True)
    return int(conn.execute(delete(Job).where(Job.id.in_(doomed.scalar_subquery()))).rowcount)
