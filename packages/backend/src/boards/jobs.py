"""Jobs: what the API stores, and how a worker claims, runs and finishes them.

Kept free of dramatiq and FastAPI so both roles (and tests) can use it directly.

The database row is the truth. A queue message only says "look at job X", and may arrive twice
(a re-delivery after a lost worker, a reconciler re-send, dramatiq's own requeue). Every status
change is therefore a guarded ``UPDATE``: a delivery *claims* a job (``queued``, or ``running``
with an expired lease, to ``running``, bumping ``attempts``), and only the holder of that
attempt may finish it. A duplicate delivery finds nothing to claim and does nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from boards.db import Database
from boards.models import Job, JobStatus, utcnow

logger = logging.getLogger("boards.jobs")

#: Payloads starting with this fail deterministically (no retry).
FAIL_PREFIX = "fail:"


def compute_result(payload: str) -> dict[str, Any]:
    """The deterministic work done on a payload."""
    return {
        "characters": len(payload),
        "words": len(payload.split()),
        "sha256": hashlib.sha256(payload.encode("utf-8")).hexdigest(),
    }


def time_limit_ms(job_time_limit: float, delay_seconds: float) -> int:
    """A job's time limit in dramatiq's unit: BOARDS_JOB_TIME_LIMIT on top of its own delay."""
    return int((job_time_limit + delay_seconds) * 1000)


def request_fingerprint(payload: str, delay_seconds: float) -> str:
    """What an ``Idempotency-Key`` is bound to: the request's meaning, not its bytes."""
    # + 0.0: -0.0 becomes 0.0, so 0, 0.0 and -0.0 are one delay.
    delay = float(delay_seconds) + 0.0
    canonical = json.dumps({"payload": payload, "delay_seconds": delay})
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _execute(db: Database, stmt: Any, params: dict[str, Any] | None = None) -> int:
    """One write statement, committed on its own; returns the rows it touched. A Core
    connection, not an ORM session: these statements need no unit of work."""
    with db.autocommit.connect() as conn:
        return int(conn.execute(stmt, params).rowcount)


# -- submitting ----------------------------------------------------------------------------------


class IdempotencyKeyReused(Exception):
    """The key was first used for a different request."""

    def __init__(self, key: str, job_id: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was used for another request (job {job_id})")
        self.key = key
        self.job_id = job_id


@dataclass(frozen=True)
class Submission:
    job: Job
    #: True when an earlier request with the same ``Idempotency-Key`` created the job.
    replayed: bool


def _replay(db: Database, key: str, fingerprint: str) -> Submission | None:
    with db.session() as session:
        job = session.scalar(select(Job).where(Job.idempotency_key == key))
    if job is None:
        return None
    if job.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused(key, job.id)
    return Submission(job, replayed=True)


def create_job(
    db: Database, payload: str, delay_seconds: float = 0.0, *, idempotency_key: str | None = None
) -> Submission:
    """Store a new ``queued`` job, or return the one an earlier request with the same key made.

    Raises :class:`IdempotencyKeyReused` when the key belongs to a different request, and
    SQLAlchemy errors when the database cannot be reached.
    """
    fingerprint = request_fingerprint(payload, delay_seconds)
    if idempotency_key is not None:
        earlier = _replay(db, idempotency_key, fingerprint)
        if earlier is not None:
            return earlier
    job = Job(
        id=str(uuid.uuid4()),
        payload=payload,
        delay_seconds=float(delay_seconds),
        status=JobStatus.QUEUED,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint if idempotency_key is not None else None,
        attempts=0,
        redeliveries=0,
        enqueued_at=utcnow(),
    )
    try:
        # A Core INSERT in autocommit: the ORM's unit of work, and BEGIN/COMMIT round trips,
        # cost more than the statement for one new row.
        with db.autocommit.connect() as conn:
            conn.execute(insert(Job), _row_of(job))
    except IntegrityError:
        # The same key, committed by a concurrent request a moment ago.
        if idempotency_key is None:
            raise
        earlier = _replay(db, idempotency_key, fingerprint)
        if earlier is None:
            raise
        return earlier
    return Submission(job, replayed=False)


def _row_of(job: Job) -> dict[str, Any]:
    now = job.enqueued_at
    job.created_at = job.updated_at = now
    return {column.key: getattr(job, column.key) for column in Job.__table__.columns}


def withdraw_job(db: Database, job: Job) -> bool:
    """Delete a job no message could be sent for (the API then answers 503).

    Only while the row is exactly as this request created it: never claimed, and not touched by
    a replay of its ``Idempotency-Key`` (which may already have answered 202 for it). If a
    message did get through after all, the worker finds no row and does nothing.
    """
    stmt = delete(Job).where(
        Job.id == job.id,
        Job.status == JobStatus.QUEUED,
        Job.attempts == 0,
        Job.enqueued_at == job.enqueued_at,
    )
    return bool(_execute(db, stmt))


def touch_queued(db: Database, job_id: str) -> bool:
    """A replayed request for a job that is still ``queued``: note the new send, so the first
    request can no longer withdraw the job; False if the job is no longer queued or gone."""
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
        .values(enqueued_at=utcnow())
    )
    return bool(_execute(db, stmt))


def get_job(db: Database, job_id: str) -> Job | None:
    with db.session() as session:
        return session.get(Job, job_id)


# -- running -------------------------------------------------------------------------------------


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


# The worker's two statements per job, built once: constructing an UPDATE per call was a
# sixth of a worker's time under load. Values come as bind parameters (named b_* so they do
# not collide with the columns SQLAlchemy binds itself).
_CLAIM = (
    update(Job)
    .where(
        Job.id == bindparam("b_id"),
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
    .returning(Job.attempts, Job.payload, Job.delay_seconds)
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


def claim_job(
    db: Database, job_id: str, lease: float, *, now: datetime | None = None
) -> Claim | str:
    """Claim a job for this delivery, or say why not: ``missing``, its final status, or
    ``held`` (running under another delivery's live lease)."""
    now = now or utcnow()
    params = {"b_id": job_id, "b_now": now, "b_until": now + timedelta(seconds=lease)}
    # Autocommit: the guarded UPDATE ... RETURNING is atomic on its own, one round trip.
    with db.autocommit.connect() as conn:
        row = conn.execute(_CLAIM, params).first()
        if row is not None:
            return Claim(job_id, int(row.attempts), row.payload, float(row.delay_seconds))
        status = conn.scalar(select(Job.status).where(Job.id == job_id))
    if status is None:
        return "missing"
    return status if status in JobStatus.FINAL else "held"


def finish_job(
    db: Database,
    claim: Claim,
    status: str,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> bool:
    """Record the outcome of ``claim``; False (and no effect) if another delivery took over."""
    assert status in JobStatus.FINAL
    params = {
        "b_id": claim.job_id,
        "b_attempt": claim.attempt,
        "b_status": status,
        "b_result": result,
        "b_error": error,
        "b_now": utcnow(),
    }
    return bool(_execute(db, _FINISH, params))


def hand_back(db: Database, claim: Claim) -> bool:
    """A stopping worker gives a running job back: ``queued`` again, to be re-sent; only
    while this claim still holds it."""
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
    return bool(_execute(db, stmt))


def mark_failed(db: Database, job_id: str, error: str) -> bool:
    """Record a final failure (unless the job already reached a final state)."""
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)))
        .values(
            status=JobStatus.FAILED,
            error=error,
            lease_expires_at=None,
            finished_at=utcnow(),
            updated_at=utcnow(),
        )
    )
    changed = _execute(db, stmt)
    return bool(changed)


def renew_leases(db: Database, claims: Iterable[Claim], lease: float) -> int:
    """Push out the leases of the claims a live worker is running; returns how many held."""
    by_attempt = [(c.job_id, c.attempt) for c in claims]
    if not by_attempt:
        return 0
    until = utcnow() + timedelta(seconds=lease)
    renewed = 0
    with db.engine.begin() as conn:
        for job_id, attempt in by_attempt:
            stmt = (
                update(Job)
                .where(
                    Job.id == job_id,
                    Job.status == JobStatus.RUNNING,
                    Job.attempts == attempt,
                )
                .values(lease_expires_at=until)
            )
            renewed += int(conn.execute(stmt).rowcount)
    return renewed


def run_job(
    db: Database,
    job_id: str,
    *,
    lease: float,
    leases: LeaseHolder | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_claim: Callable[[Claim], None] | None = None,
) -> str:
    """Process one delivery of a job; returns the job's status afterwards, or why nothing ran
    (``missing``, ``held``, a final status).

    Database errors propagate so the caller (the actor) retries. Deterministic failures
    (``fail:`` payloads) are recorded as ``failed`` and return normally.
    """
    claim = claim_job(db, job_id, lease)
    if isinstance(claim, str):
        logger.info("job %s: nothing to do (%s)", job_id, claim)
        return claim
    if on_claim is not None:
        on_claim(claim)
    if leases is not None:
        leases.add(claim)
    try:
        logger.info("job %s running (attempt %d)", job_id, claim.attempt)
        if claim.delay_seconds > 0:
            sleep(claim.delay_seconds)  # cooperative under dramatiq-gevent's monkey patching
        result: dict[str, Any] | None = None
        error: str | None = None
        if claim.payload.startswith(FAIL_PREFIX):
            outcome = JobStatus.FAILED
            error = claim.payload[len(FAIL_PREFIX) :].strip() or "failure requested by payload"
        else:
            outcome, result = JobStatus.SUCCEEDED, compute_result(claim.payload)
        if not finish_job(db, claim, outcome, result=result, error=error):
            logger.warning(
                "job %s: attempt %d lost its lease; result dropped", job_id, claim.attempt
            )
            return "superseded"
    finally:
        if leases is not None:
            leases.discard(claim)
    logger.info("job %s %s", job_id, outcome)
    return outcome


# -- figures for /metrics ------------------------------------------------------------------------


def status_counts(db: Database) -> dict[str, int]:
    """Jobs per status (every status present, zero when none)."""
    counts = dict.fromkeys(JobStatus.ALL, 0)
    with db.session() as session:
        for status, count in session.execute(select(Job.status, func.count()).group_by(Job.status)):
            counts[status] = int(count)
    return counts


def oldest_queued_age(db: Database, *, now: datetime | None = None) -> float:
    """Seconds the oldest ``queued`` job has waited since it was created (0 when none)."""
    with db.session() as session:
        oldest = session.scalar(
            select(func.min(Job.created_at)).where(Job.status == JobStatus.QUEUED)
        )
    if oldest is None:
        return 0.0
    return max(0.0, ((now or utcnow()) - oldest).total_seconds())
