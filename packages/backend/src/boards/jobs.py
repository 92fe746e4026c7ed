"""Jobs: what the API stores and enqueues, and what the worker does with them.

Kept free of dramatiq and FastAPI so both roles (and tests) can use it directly.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import update

from boards.db import Database
from boards.models import Job, JobStatus, utcnow

logger = logging.getLogger("boards.jobs")

#: The dramatiq queue and actor the API sends to and the worker consumes.
QUEUE_NAME = "boards-jobs"
ACTOR_NAME = "process_job"

#: Payloads starting with this fail deterministically (no retry).
FAIL_PREFIX = "fail:"


def compute_result(payload: str) -> dict[str, Any]:
    """The deterministic work done on a payload."""
    return {
        "characters": len(payload),
        "words": len(payload.split()),
        "sha256": hashlib.sha256(payload.encode("utf-8")).hexdigest(),
    }


def create_job(db: Database, payload: str, delay_seconds: float = 0.0) -> Job:
    job = Job(
        id=str(uuid.uuid4()),
        payload=payload,
        delay_seconds=float(delay_seconds),
        status=JobStatus.QUEUED,
    )
    with db.session() as session:
        session.add(job)
        session.commit()
    return job


def get_job(db: Database, job_id: str) -> Job | None:
    with db.session() as session:
        return session.get(Job, job_id)


def _set(db: Database, job_id: str, *, only_from: tuple[str, ...] = (), **values: Any) -> bool:
    """Update one job; with ``only_from``, only while its status is one of those."""
    stmt = update(Job).where(Job.id == job_id).values(updated_at=utcnow(), **values)
    if only_from:
        stmt = stmt.where(Job.status.in_(only_from))
    with db.session() as session:
        changed = session.execute(stmt).rowcount  # type: ignore[attr-defined]
        session.commit()
    return bool(changed)


def mark_failed(db: Database, job_id: str, error: str) -> bool:
    """Record a final failure (unless the job already reached a final state)."""
    return _set(
        db,
        job_id,
        only_from=(JobStatus.QUEUED, JobStatus.RUNNING),
        status=JobStatus.FAILED,
        error=error,
    )


def mark_requeued(db: Database, job_id: str) -> bool:
    """A running job handed back to the queue (worker stopping): back to ``queued``."""
    return _set(db, job_id, only_from=(JobStatus.RUNNING,), status=JobStatus.QUEUED)


def run_job(db: Database, job_id: str, *, sleep: Callable[[float], None] = time.sleep) -> str:
    """Process one job; returns its final status (or ``"missing"``).

    Database errors propagate so the caller (the actor) retries. Deterministic failures
    (``fail:`` payloads) are recorded as ``failed`` and return normally.
    """
    with db.session() as session:
        job = session.get(Job, job_id)
        if job is None:
            logger.warning("job %s not found; dropping the message", job_id)
            return "missing"
        if job.status in JobStatus.FINAL:
            logger.info("job %s already %s; nothing to do", job_id, job.status)
            return job.status
        job.status = JobStatus.RUNNING
        job.error = None
        session.commit()
        payload, delay = job.payload, job.delay_seconds

    logger.info("job %s running", job_id)
    if delay > 0:
        sleep(delay)  # time.sleep is cooperative under dramatiq-gevent's monkey patching

    if payload.startswith(FAIL_PREFIX):
        reason = payload[len(FAIL_PREFIX) :].strip() or "failure requested by payload"
        _set(db, job_id, status=JobStatus.FAILED, error=reason, result=None)
        logger.info("job %s failed: %s", job_id, reason)
        return JobStatus.FAILED

    _set(db, job_id, status=JobStatus.SUCCEEDED, result=compute_result(payload), error=None)
    logger.info("job %s succeeded", job_id)
    return JobStatus.SUCCEEDED
