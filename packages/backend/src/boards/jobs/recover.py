"""Recovering jobs the queue lost: re-send, or give up. The reconciler
(:mod:`boards.workers.reconciler`) decides when; these are the statements, each guarded so two
reconcilers, or a reconciler and a late worker, never both act on one job."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select, update

from boards.db import try_xact_lock
from boards.models import Job, JobStatus

#: pg_try_advisory_xact_lock key of a pass: int.from_bytes(b"boards/r") (fits a bigint).
LOCK_KEY = int.from_bytes(b"boards/r", "big")


def try_lock_pass(conn: Connection) -> bool:
    """One pass at a time across replicas, until ``conn``'s transaction ends (PostgreSQL). On
    SQLite, a single machine's database, the per-row guards alone keep passes from acting twice."""
    return try_xact_lock(conn, LOCK_KEY)


def expired_leases(conn: Connection, now: datetime, limit: int) -> Sequence[Row[str, int, float]]:
    """``running`` jobs whose worker stopped renewing: (id, attempts, delay_seconds), oldest
    first."""
    return conn.execute(
        select(Job.id, Job.attempts, Job.delay_seconds)
        .where(Job.status == JobStatus.RUNNING, Job.lease_expires_at < now)
        .order_by(Job.lease_expires_at)
        .limit(limit)
    ).all()


def _if_still_expired(
    conn: Connection, job_id: str, attempts: int, now: datetime, values: dict[str, Any]
) -> bool:
    """Write ``values`` only if the job is still running under the lease that was seen expired
    (same attempt, lease still past): a worker that renewed, or another pass, wins."""
    stmt = (
        update(Job)
        .where(
            Job.id == job_id,
            Job.status == JobStatus.RUNNING,
            Job.attempts == attempts,
            Job.lease_expires_at < now,
        )
        .values(lease_expires_at=None, updated_at=now, **values)
    )
    return bool(conn.execute(stmt).rowcount)


def resend_expired(conn: Connection, job_id: str, attempts: int, now: datetime) -> bool:
    """Re-send: back to ``queued`` (the caller sends its message after the commit)."""
    queued = {"status": JobStatus.QUEUED, "enqueued_at": now, "redeliveries": Job.redeliveries + 1}
    return _if_still_expired(conn, job_id, attempts, now, queued)


def give_up(conn: Connection, job_id: str, attempts: int, now: datetime) -> bool:
    """Give up: a job that lost its worker ``attempts`` times ends ``failed``."""
    error = f"gave up: its worker was lost {attempts} time(s)"
    failed = {"status": JobStatus.FAILED, "error": error, "finished_at": now}
    return _if_still_expired(conn, job_id, attempts, now, failed)


def stale_queued(conn: Connection, cutoff: datetime, limit: int) -> Sequence[Row[str, float]]:
    """``queued`` jobs not sent or seen since ``cutoff``: (id, delay_seconds), oldest first."""
    return conn.execute(
        select(Job.id, Job.delay_seconds)
        .where(Job.status == JobStatus.QUEUED, Job.enqueued_at < cutoff)
        .order_by(Job.enqueued_at)
        .limit(limit)
    ).all()


def mark_seen(conn: Connection, job_ids: Sequence[str], now: datetime) -> None:
    """Queued jobs whose message Redis does hold: not lost, so not re-sent for a while."""
    if job_ids:
        conn.execute(
            update(Job)
            .where(Job.id.in_(job_ids), Job.status == JobStatus.QUEUED)
            .values(enqueued_at=now)
        )


def resend_lost(conn: Connection, job_id: str, cutoff: datetime, now: datetime) -> bool:
    """Re-send a ``queued`` job Redis holds no message for (the caller sends after the commit)."""
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED, Job.enqueued_at < cutoff)
        .values(enqueued_at=now, redeliveries=Job.redeliveries + 1)
    )
    return bool(conn.execute(stmt).rowcount)
