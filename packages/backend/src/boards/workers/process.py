"""What one delivery of a job does in the worker, apart from dramatiq's plumbing (the actor in
:mod:`boards.workers.actors` calls it; tests call it on dramatiq's StubBroker)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from dramatiq.middleware import Shutdown, TimeLimitExceeded

from boards.db import Database
from boards.jobs import Claim, LeaseHolder, finish_job, hand_back, run_job
from boards.logs import one_line
from boards.models import JobStatus
from boards.workers.middleware import give_up_error

logger = logging.getLogger("boards.worker")


def process_delivery(
    database: Database,
    job_id: str,
    *,
    lease: float,
    leases: LeaseHolder,
    resend: Callable[[], object],
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Run one delivery. Database errors raise, so dramatiq retries with backoff.

    Over its time limit (dramatiq's TimeLimit raises in the thread) the job is ``failed``. When
    the worker stops mid-job (HandBackOnShutdown raises Shutdown) the job goes back to
    ``queued`` and ``resend`` puts its message back on the queue.
    """
    claims: list[Claim] = []
    try:
        run_job(database, job_id, lease=lease, leases=leases, on_claim=claims.append, sleep=sleep)
    except TimeLimitExceeded as exc:
        logger.warning("job %s exceeded its time limit", job_id)
        if claims:
            error = give_up_error(claims[0].attempt, exc)
            finish_job(database, claims[0], JobStatus.FAILED, error=error)
    except Shutdown:
        if claims:
            try:
                hand_back(database, claims[0])
            except Exception as exc:
                logger.error("job %s: could not mark it queued again: %s", job_id, one_line(exc))
        resend()
        logger.info("job %s handed back to the queue (worker stopping)", job_id)
