"""Taking a job in: create, send, or withdraw what could not be sent.

A ``202`` is a promise, so the order is fixed: the row is committed first, then the message is
sent. A send that fails withdraws the row (the client gets ``503`` and nothing runs) unless
someone else may already have been told ``202`` for it; then the row stays ``queued`` and the
reconciler sends it. Requests without an ``Idempotency-Key`` go through :class:`Intake`, which
writes and sends everything that arrived meanwhile in one go.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from boards.db import UNAVAILABLE, Database
from boards.jobs.batch import AsyncGroupCommit
from boards.models import Job, JobStatus, utcnow
from boards.queue import BrokerUnavailable, JobQueue

logger = logging.getLogger("boards.jobs")


def time_limit_ms(job_time_limit: float, delay_seconds: float) -> int:
    """A job's time limit in dramatiq's unit: BOARDS_JOB_TIME_LIMIT on top of its own delay."""
    return int((job_time_limit + delay_seconds) * 1000)


def request_fingerprint(payload: str, delay_seconds: float) -> str:
    """What an ``Idempotency-Key`` is bound to: the request's meaning, not its bytes."""
    # + 0.0: -0.0 becomes 0.0, so 0, 0.0 and -0.0 are one delay.
    delay = float(delay_seconds) + 0.0
    canonical = json.dumps({"payload": payload, "delay_seconds": delay})
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class IdempotencyKeyReused(Exception):
    """The key was first used for a different request."""

    def __init__(self, key: str, job_id: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was used for another request (job {job_id})")
        self.key = key
        self.job_id = job_id


class NotAccepted(Exception):
    """The job could not be sent and was withdrawn: nothing is stored, nothing will run."""


@dataclass(frozen=True)
class Submission:
    job: Job
    #: True when an earlier request with the same ``Idempotency-Key`` created the job.
    replayed: bool


def new_row(
    payload: str, delay_seconds: float, idempotency_key: str | None = None
) -> dict[str, Any]:
    """The column values of a new ``queued`` job; the columns it leaves NULL are left out, as
    every bound parameter costs the driver time, row by row."""
    now = utcnow()
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "payload": payload,
        "delay_seconds": float(delay_seconds),
        "status": JobStatus.QUEUED,
        "attempts": 0,
        "redeliveries": 0,
        "enqueued_at": now,
        "created_at": now,
        "updated_at": now,
    }
    if idempotency_key is not None:
        row["idempotency_key"] = idempotency_key
        row["request_fingerprint"] = request_fingerprint(payload, delay_seconds)
    return row


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
    if idempotency_key is not None:
        earlier = _replay(db, idempotency_key, request_fingerprint(payload, delay_seconds))
        if earlier is not None:
            return earlier
    row = new_row(payload, delay_seconds, idempotency_key)
    try:
        insert_rows(db, [row])
    except IntegrityError:
        # The same key, committed by a concurrent request a moment ago.
        if idempotency_key is None:
            raise
        earlier = _replay(db, idempotency_key, request_fingerprint(payload, delay_seconds))
        if earlier is None:
            raise
        return earlier
    return Submission(Job(**row), replayed=False)


def insert_rows(db: Database, rows: Sequence[dict[str, Any]]) -> None:
    """Create: one Core ``INSERT`` of every row (a multi-row statement) in autocommit; the ORM's
    unit of work, and BEGIN/COMMIT round trips, cost more than the statement."""
    with db.autocommit.connect() as conn:
        conn.execute(insert(Job), rows)


def mark_sent(db: Database, job_id: str) -> bool:
    """Send, for a replayed request of a job still ``queued``: note the new send, so the first
    request can no longer withdraw the job. False if the job is no longer queued, or gone."""
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
        .values(enqueued_at=utcnow())
    )
    with db.autocommit.connect() as conn:
        return bool(conn.execute(stmt).rowcount)


def withdraw_jobs(db: Database, jobs: Sequence[dict[str, Any]]) -> set[str]:
    """Withdraw: delete jobs no message could be sent for; returns the ids deleted.

    Only rows exactly as their request created them: never claimed, and not touched by a replay
    of their ``Idempotency-Key`` (which may already have answered 202). If a message did get
    through after all, the worker finds no row and does nothing.
    """
    if not jobs:
        return set()
    stmt = (
        delete(Job)
        .where(
            Job.id.in_([job["id"] for job in jobs]),
            Job.status == JobStatus.QUEUED,
            Job.attempts == 0,
            Job.enqueued_at.in_({job["enqueued_at"] for job in jobs}),
        )
        .returning(Job.id)
    )
    with db.autocommit.connect() as conn:
        return set(conn.scalars(stmt))


def _send(queue: JobQueue, jobs: Sequence[dict[str, Any]], job_time_limit: float) -> bool:
    """Send a message for each job; False if the broker failed."""
    try:
        queue.enqueue_many(
            [(job["id"], time_limit_ms(job_time_limit, job["delay_seconds"])) for job in jobs]
        )
    except BrokerUnavailable as exc:
        logger.error("%d job(s): could not enqueue: %s", len(jobs), exc)
        return False
    return True


def _withdraw_unsent(db: Database, jobs: Sequence[dict[str, Any]]) -> set[str]:
    """After a failed send: the ids withdrawn (their requests answer 503); the others stay
    queued, and the reconciler sends them."""
    try:
        withdrawn = withdraw_jobs(db, jobs)
    except UNAVAILABLE:
        withdrawn = set()  # the rows are committed: 202 stays true
    for job in jobs:
        if job["id"] not in withdrawn:
            logger.info("job %s stays queued: the reconciler will send it", job["id"])
    return withdrawn


def submit_job(
    db: Database,
    queue: JobQueue,
    payload: str,
    delay_seconds: float,
    *,
    idempotency_key: str | None,
    job_time_limit: float,
) -> Submission:
    """One request, start to end: create (or replay), then send or withdraw.

    Raises :class:`IdempotencyKeyReused`, :class:`NotAccepted`, and SQLAlchemy's errors when the
    database cannot be reached (nothing stored then either).
    """
    submission = create_job(db, payload, delay_seconds, idempotency_key=idempotency_key)
    if (
        submission.replayed
        and submission.job.status == JobStatus.QUEUED
        and not mark_sent(db, submission.job.id)
    ):
        # The first request withdrew it a moment ago (its send failed): start afresh.
        submission = create_job(db, payload, delay_seconds, idempotency_key=idempotency_key)
    if submission.job.status != JobStatus.QUEUED:
        return submission
    job = submission.job
    row = {"id": job.id, "enqueued_at": job.enqueued_at, "delay_seconds": job.delay_seconds}
    # A replay's row stood before this request: if its send fails, the reconciler sends it.
    sent = _send(queue, [row], job_time_limit)
    if not sent and not submission.replayed and _withdraw_unsent(db, [row]):
        raise NotAccepted
    return submission


@dataclass(frozen=True)
class JobRequest:
    payload: str
    delay_seconds: float


#: Batches written at once: a second one's round trips overlap the first one's.
INTAKE_WRITERS = 2


class Intake:
    """Requests without an ``Idempotency-Key``, group-committed (:mod:`boards.jobs.batch`): those
    arriving while a batch is written go out together, one ``INSERT`` and one round of sends."""

    def __init__(self, db: Database, queue: JobQueue, job_time_limit: float) -> None:
        self.db = db
        self.queue = queue
        self.job_time_limit = job_time_limit
        # Threads of its own: the event loop never waits on the database or the broker.
        self._executor = ThreadPoolExecutor(INTAKE_WRITERS, thread_name_prefix="boards-intake")
        self._commit = AsyncGroupCommit(self._write, self._executor, writers=INTAKE_WRITERS)

    async def submit(self, payload: str, delay_seconds: float) -> tuple[str, str]:
        """The new job's id and status. Raises :class:`NotAccepted`, and SQLAlchemy's errors
        as :func:`submit_job` does."""
        outcome = await self._commit(JobRequest(payload, delay_seconds))
        if isinstance(outcome, NotAccepted):
            raise outcome
        return outcome, JobStatus.QUEUED

    def _write(self, requests: list[JobRequest]) -> list[str | NotAccepted]:
        # Rows as plain values: an ORM object per job cost more than its share of the INSERT.
        rows = [new_row(r.payload, r.delay_seconds) for r in requests]
        insert_rows(self.db, rows)
        withdrawn: set[str] = set()
        if not _send(self.queue, rows, self.job_time_limit):
            withdrawn = _withdraw_unsent(self.db, rows)
        return [NotAccepted() if row["id"] in withdrawn else row["id"] for row in rows]

    def warm_up(self) -> None:
        """Connect to the database and the broker ahead of the first request, which would
        otherwise wait for both, and every request that arrives meanwhile behind it."""
        self._executor.submit(lambda: None).result()  # its thread, started
        self.db.autocommit.connect().close()
        self.queue.ping()

    def close(self) -> None:
        self._executor.shutdown(wait=True)
