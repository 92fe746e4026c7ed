"""Running a job: claim, renew the lease, finish, fail, hand back.

The row is the truth. A queue message only says "look at job X", and may arrive twice (a
re-delivery after a lost worker, a reconciler re-send, dramatiq's own requeue). So a delivery
*claims* the job (``queued``, or ``running`` with an expired lease, to ``running``, bumping
``attempts``), and ``attempts`` then fences every later write of that delivery: only the holder
of the current attempt may finish it, renew it or hand it back. A duplicate delivery finds
nothing to claim and does nothing.

:class:`Runner` group-commits claims and finishes (:mod:`boards.jobs.batch`): a busy worker
claims and finishes the jobs of its threads a batch at a time, one transaction each.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import bindparam, select, tuple_, update

from boards.db import Database
from boards.jobs.batch import GroupCommit
from boards.jobs.outcome import Outcome
from boards.jobs.work import Result, perform
from boards.models import Job, JobStatus, utcnow

logger = logging.getLogger("boards.jobs")


@dataclass(frozen=True)
class Claim:
    """One delivery's hold on a job: ``attempt`` fences every later write of this delivery."""

    job_id: str
    attempt: int
    payload: str
    delay_seconds: float


class LeaseHolder(Protocol):
    """Where a worker keeps the claims it is running, so a heartbeat can renew their leases."""

    def add(self, claim: Claim) -> None: ...
    def discard(self, claim: Claim) -> None: ...


# Built once: constructing an UPDATE per call was a sixth of a worker's time under load. Values
# come as bind parameters named b_* (not to collide with the columns SQLAlchemy binds itself).
_CLAIM = (
    update(Job)
    .where(
        Job.id.in_(bindparam("b_ids", expanding=True)),
        (Job.status == JobStatus.QUEUED)
        | ((Job.status == JobStatus.RUNNING) & (Job.lease_expires_at < bindparam("b_now"))),
    )
    .values(
        status=JobStatus.RUNNING,
        attempts=Job.attempts + 1,
        lease_expires_at=bindparam("b_until"),
        started_at=bindparam("b_now"),
        error=None,
        updated_at=bindparam("b_now"),
    )
    .returning(Job.id, Job.attempts, Job.payload, Job.delay_seconds)
)
_FINISH = (
    update(Job)
    .where(
        Job.id == bindparam("b_id"),
        Job.status == JobStatus.RUNNING,
        Job.attempts == bindparam("b_attempt"),
    )
    .values(
        status=bindparam("b_status"),
        result=bindparam("b_result"),
        error=bindparam("b_error"),
        lease_expires_at=None,
        finished_at=bindparam("b_now"),
        updated_at=bindparam("b_now"),
    )
)


def claim_jobs(
    db: Database, job_ids: Sequence[str], lease: float, *, now: datetime | None = None
) -> list[Claim | Outcome]:
    """Claim: one guarded ``UPDATE ... RETURNING`` for every id, in one transaction. For each id
    its :class:`Claim`, or why not: ``MISSING``, ``DONE`` (already final) or ``HELD``."""
    now = now or utcnow()
    params = {"b_ids": list(job_ids), "b_now": now, "b_until": now + timedelta(seconds=lease)}
    with db.autocommit.connect() as conn:
        claimed = {
            row.id: Claim(row.id, int(row.attempts), row.payload, float(row.delay_seconds))
            for row in conn.execute(_CLAIM, params)
        }
        others = [job_id for job_id in job_ids if job_id not in claimed]
        # Only duplicates get here: a look at their status says why, outside the guard.
        statuses: dict[str, str] = {}
        if others:
            for job_id, status in conn.execute(
                select(Job.id, Job.status).where(Job.id.in_(others))
            ):
                statuses[job_id] = status
    return [claimed.get(job_id) or _why_not(statuses.get(job_id)) for job_id in job_ids]


def _why_not(status: str | None) -> Outcome:
    if status is None:
        return Outcome.MISSING
    return Outcome.DONE if status in JobStatus.FINAL else Outcome.HELD


def claim_job(
    db: Database, job_id: str, lease: float, *, now: datetime | None = None
) -> Claim | Outcome:
    return claim_jobs(db, [job_id], lease, now=now)[0]


def finish_jobs(db: Database, outcomes: Sequence[tuple[Claim, Result]]) -> list[bool]:
    """Finish (or fail) each claim with its result: one guarded ``UPDATE`` per claim, sent in
    one go (psycopg pipelines an executemany), one commit for all. False (and no effect) where
    another delivery took the job over meanwhile."""
    now = utcnow()
    params = [
        {
            "b_id": claim.job_id,
            "b_attempt": claim.attempt,
            "b_status": result.status,
            "b_result": result.result,
            "b_error": result.error,
            "b_now": now,
        }
        for claim, result in outcomes
    ]
    # One alone commits on its own (one round trip, not BEGIN, UPDATE, COMMIT).
    with db.engine.begin() if len(params) > 1 else db.autocommit.begin() as conn:
        if conn.execute(_FINISH, params).rowcount == len(params):
            return [True] * len(params)
        # Some lost their lease (rare): a finish of ours is the row at our attempt and our time.
        ids = [claim.job_id for claim, _ in outcomes]
        rows = conn.execute(
            select(Job.id, Job.attempts).where(Job.id.in_(ids), Job.finished_at == now)
        )
        ours = {(job_id, attempts) for job_id, attempts in rows}
    return [(claim.job_id, claim.attempt) in ours for claim, _ in outcomes]


def finish_job(db: Database, claim: Claim, result: Result) -> bool:
    assert result.status in JobStatus.FINAL
    return finish_jobs(db, [(claim, result)])[0]


def renew_leases(db: Database, claims: Iterable[Claim], lease: float) -> int:
    """Renew: push out the leases of the claims a live worker is running, in one statement;
    returns how many it still held."""
    held = [(claim.job_id, claim.attempt) for claim in claims]
    if not held:
        return 0
    stmt = (
        update(Job)
        .where(tuple_(Job.id, Job.attempts).in_(held), Job.status == JobStatus.RUNNING)
        .values(lease_expires_at=utcnow() + timedelta(seconds=lease))
    )
    with db.autocommit.connect() as conn:
        return int(conn.execute(stmt).rowcount)


def hand_back(db: Database, claim: Claim) -> bool:
    """Hand back: a stopping worker gives a running job back, ``queued`` again to be re-sent;
    only while this claim still holds it."""
    now = utcnow()
    stmt = (
        update(Job)
        .where(
            Job.id == claim.job_id,
            Job.status == JobStatus.RUNNING,
            Job.attempts == claim.attempt,
        )
        .values(status=JobStatus.QUEUED, lease_expires_at=None, enqueued_at=now, updated_at=now)
    )
    with db.autocommit.connect() as conn:
        return bool(conn.execute(stmt).rowcount)


def fail_job(db: Database, job_id: str, error: str) -> bool:
    """Fail: the queue gave up on a job (its retries are spent); unless it is final already."""
    now = utcnow()
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)))
        .values(
            status=JobStatus.FAILED,
            error=error,
            lease_expires_at=None,
            finished_at=now,
            updated_at=now,
        )
    )
    with db.autocommit.connect() as conn:
        return bool(conn.execute(stmt).rowcount)


class Runner:
    """The worker's side of a job: claims and finishes group-committed across its threads."""

    def __init__(
        self, db: Database, lease: float, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.db = db
        self.lease = lease
        self.sleep = sleep
        self._claim: GroupCommit[str, Claim | Outcome] = GroupCommit(
            lambda ids: claim_jobs(db, ids, lease)
        )
        self._finish: GroupCommit[tuple[Claim, Result], bool] = GroupCommit(
            lambda outcomes: finish_jobs(db, outcomes)
        )

    def claim(self, job_id: str) -> Claim | Outcome:
        return self._claim(job_id)

    def finish(self, claim: Claim, result: Result) -> bool:
        return self._finish((claim, result))

    def execute(self, claim: Claim) -> Outcome:
        """Do the claimed job's work and record it. Database errors propagate (the queue
        retries); a ``fail:`` payload is recorded ``failed`` and returns normally."""
        logger.debug("job %s running (attempt %d)", claim.job_id, claim.attempt)
        if claim.delay_seconds > 0:
            self.sleep(claim.delay_seconds)  # cooperative under dramatiq-gevent's patching
        result = perform(claim.payload)
        if not self.finish(claim, result):
            logger.warning(
                "job %s: attempt %d lost its lease; result dropped", claim.job_id, claim.attempt
            )
            return Outcome.SUPERSEDED
        logger.info("job %s %s (attempt %d)", claim.job_id, result.status, claim.attempt)
        return Outcome(result.status)

    def run(self, job_id: str, leases: LeaseHolder | None = None) -> Outcome:
        """One delivery, claim to finish: what the worker does, without the queue's plumbing."""
        claim = self.claim(job_id)
        if not isinstance(claim, Claim):
            logger.info("job %s: nothing to do (%s)", job_id, claim)
            return claim
        if leases is not None:
            leases.add(claim)
        try:
            return self.execute(claim)
        finally:
            if leases is not None:
                leases.discard(claim)


def run_job(
    db: Database,
    job_id: str,
    *,
    lease: float,
    leases: LeaseHolder | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """One delivery of ``job_id`` on a :class:`Runner` of its own."""
    return Runner(db, lease, sleep=sleep).run(job_id, leases)
