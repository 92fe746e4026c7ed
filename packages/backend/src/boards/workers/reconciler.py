"""The reconciler: re-delivers what the queue lost, so every accepted job reaches a final state.

Redis is a fast path, the database is the truth. Each pass (every BOARDS_RECONCILE_INTERVAL
seconds, in every worker process, one pass at a time across all replicas):

1. **Expired leases.** A ``running`` job whose worker stopped renewing its lease (killed, OOM,
   lost its node) goes back to ``queued`` and is re-sent; after BOARDS_JOB_MAX_DELIVERIES claims
   it is marked ``failed`` instead (a job that keeps killing its worker must end somewhere).
2. **Lost messages.** ``queued`` jobs not sent or seen for BOARDS_RECONCILE_QUEUED_AFTER seconds
   are looked up in Redis; those Redis holds no message for (Redis killed or flushed, the API
   killed between its commit and its send, a message dead-lettered while the database was down)
   are re-sent. The ones Redis does hold are marked as seen, so a long backlog is not re-sent.
3. **Retention.** Finished jobs older than BOARDS_JOB_RETENTION are deleted, up to
   ``PRUNE_BATCHES`` batches of ``PRUNE_BATCH`` rows, each its own short transaction (one
   replica at a time), so the table stays as large as the retention, not the service's age.

Every change is a compare-and-set on the row, so two reconcilers (or a reconciler and a late
worker) never both act on one job; on PostgreSQL a transaction-scoped advisory lock also keeps
passes from overlapping. Messages are sent after the commit: a send that fails leaves the row
``queued`` with a fresh ``enqueued_at``, and a later pass finds it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Connection

from boards.db import Database
from boards.jobs import recover, retention, time_limit_ms
from boards.logs import one_line
from boards.models import utcnow
from boards.queue import held_job_ids, job_message

logger = logging.getLogger("boards.reconciler")

#: Rows looked at per step and pass; a larger backlog is worked through over several passes.
BATCH = 1000
#: Finished jobs deleted per transaction, and transactions per pass: short enough never to hold
#: a lock for long, enough (10 000 a pass) to keep up with far more jobs than a worker finishes.
PRUNE_BATCH = 1000
PRUNE_BATCHES = 10


@dataclass
class PassReport:
    """What one pass did. ``outcome``: ``ok``, ``skipped`` (another pass holds the lock),
    ``broker_down`` (Redis did not answer: lost messages wait for the next pass)."""

    outcome: str = "ok"
    lease_expired: list[str] = field(default_factory=list)
    gave_up: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    seen: int = 0
    sent: int = 0
    pruned: int = 0

    @property
    def redelivered(self) -> int:
        return len(self.lease_expired) + len(self.lost)


@dataclass
class Reconciler:
    database: Database
    broker: RedisBroker
    max_deliveries: int
    queued_after: float
    job_time_limit: float
    retention: float
    now: Callable[[], datetime] = utcnow

    def run_once(self) -> PassReport:
        report = self._recover()
        report.pruned = self._prune()
        return report

    def _recover(self) -> PassReport:
        report = PassReport()
        now = self.now()
        to_send: list[tuple[str, float]] = []
        with self.database.engine.connect() as conn:
            if not recover.try_lock_pass(conn):
                conn.rollback()
                report.outcome = "skipped"
                return report
            to_send += self._expired_leases(conn, now, report)
            try:
                to_send += self._lost_messages(conn, now, report)
            except Exception as exc:  # redis errors: nothing to compare with, try next pass
                logger.warning("reconciler: redis did not answer: %s", one_line(exc))
                report.outcome = "broker_down"
            conn.commit()
        if report.outcome == "ok":
            report.sent = self._send(to_send)
            if report.sent < len(to_send):
                report.outcome = "broker_down"
        if report.redelivered or report.gave_up:
            logger.info(
                "reconciler: re-sent %d job(s) with an expired lease, %d lost from the queue; "
                "gave up on %d",
                len(report.lease_expired),
                len(report.lost),
                len(report.gave_up),
            )
        return report

    def _prune(self) -> int:
        cutoff = self.now() - timedelta(seconds=self.retention)
        pruned = 0
        for _ in range(PRUNE_BATCHES):
            with self.database.engine.begin() as conn:
                if not retention.try_lock_batch(conn):
                    break
                deleted = retention.prune_finished(conn, cutoff, PRUNE_BATCH)
            pruned += deleted
            if deleted < PRUNE_BATCH:
                break
        if pruned:
            logger.debug("reconciler: deleted %d job(s) finished before %s", pruned, cutoff)
        return pruned

    def _expired_leases(
        self, conn: Connection, now: datetime, report: PassReport
    ) -> list[tuple[str, float]]:
        requeued: list[tuple[str, float]] = []
        for row in recover.expired_leases(conn, now, BATCH):
            if row.attempts >= self.max_deliveries:
                if recover.give_up(conn, row.id, row.attempts, now):
                    report.gave_up.append(row.id)
            elif recover.resend_expired(conn, row.id, row.attempts, now):
                report.lease_expired.append(row.id)
                requeued.append((row.id, row.delay_seconds))
        return requeued

    def _lost_messages(
        self, conn: Connection, now: datetime, report: PassReport
    ) -> list[tuple[str, float]]:
        cutoff = now - timedelta(seconds=self.queued_after)
        stale = recover.stale_queued(conn, cutoff, BATCH)
        if not stale:
            return []
        held = held_job_ids(self.broker)
        seen = [row.id for row in stale if row.id in held]
        recover.mark_seen(conn, seen, now)
        report.seen = len(seen)
        lost: list[tuple[str, float]] = []
        for row in stale:
            if row.id not in held and recover.resend_lost(conn, row.id, cutoff, now):
                report.lost.append(row.id)
                lost.append((row.id, row.delay_seconds))
        return lost

    def _send(self, jobs: list[tuple[str, float]]) -> int:
        sent = 0
        for job_id, delay in jobs:
            message = job_message(job_id, time_limit_ms=time_limit_ms(self.job_time_limit, delay))
            try:
                self.broker.enqueue(message)
            except Exception as exc:
                logger.warning(
                    "reconciler: could not re-send %d job(s), next pass retries: %s",
                    len(jobs) - sent,
                    one_line(exc),
                )
                break
            sent += 1
        return sent
