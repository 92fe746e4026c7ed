"""What one delivery of a job does in the worker, apart from dramatiq's plumbing (the actor in
:mod:`boards.workers.actors` calls it; tests call it on dramatiq's StubBroker)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from dramatiq.middleware import Shutdown, TimeLimitExceeded

from boards.jobs import Claim, LeaseHolder, Outcome, Result, Runner, hand_back
from boards.logs import one_line
from boards.models import JobStatus
from boards.workers.middleware import give_up_error

logger = logging.getLogger("boards.worker")


def process_delivery(
    runner: Runner,
    job_id: str,
    *,
    leases: LeaseHolder,
    resend: Callable[[], object],
) -> Outcome:
    """Run one delivery. Database errors raise, so dramatiq retries with backoff.

    Over its time limit (dramatiq's TimeLimit raises in the thread) the job is ``failed``. When
    the worker stops mid-job (HandBackOnShutdown raises Shutdown) the job goes back to
    ``queued`` and ``resend`` puts its message back on the queue.
    """
    try:
        claim = runner.claim(job_id)
    except Shutdown:
        # Whether or not the claim landed, the message goes back: a claim nobody holds any
        # more runs out its lease, and the reconciler re-sends it.
        resend()
        return Outcome.HANDED_BACK
    if not isinstance(claim, Claim):
        logger.info("job %s: nothing to do (%s)", job_id, claim)
        return claim
    leases.add(claim)
    try:
        return runner.execute(claim)
    except TimeLimitExceeded as exc:
        logger.warning("job %s exceeded its time limit", job_id)
        runner.finish(claim, Result(JobStatus.FAILED, error=give_up_error(claim.attempt, exc)))
        return Outcome.FAILED
    except Shutdown:
        try:
            hand_back(runner.db, claim)
        except Exception as exc:
            logger.error("job %s: could not mark it queued again: %s", job_id, one_line(exc))
        resend()
        logger.info("job %s handed back to the queue (worker stopping)", job_id)
        return Outcome.HANDED_BACK
    finally:
        leases.discard(claim)
