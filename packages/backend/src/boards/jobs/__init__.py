"""Jobs: every change of a job's state, and nothing else writes a job.

The API, the worker and the reconciler call these functions and hold no SQL of their own; each
state change is one function with one guarded statement (docs/jobs.md maps who calls what):

* :mod:`~boards.jobs.submit`: create, send, withdraw (and the API's group-committed intake);
* :mod:`~boards.jobs.run`: claim, renew a lease, finish, fail, hand back;
* :mod:`~boards.jobs.recover`: re-send and give up, for the reconciler;
* :mod:`~boards.jobs.retention`: delete finished jobs past the retention, for the reconciler;
* :mod:`~boards.jobs.read`: reading, for the API and ``/metrics``;
* :mod:`~boards.jobs.work`: the work itself; :mod:`~boards.jobs.outcome`: what a step came to.

Free of dramatiq and FastAPI, so both roles (and tests) use it directly.
"""

from boards.jobs.outcome import Outcome
from boards.jobs.read import get_job, oldest_queued_age, status_counts
from boards.jobs.run import (
    Claim,
    LeaseHolder,
    Runner,
    claim_job,
    claim_jobs,
    fail_job,
    finish_job,
    finish_jobs,
    hand_back,
    renew_leases,
    run_job,
)
from boards.jobs.submit import (
    IdempotencyKeyReused,
    Intake,
    NotAccepted,
    Submission,
    create_job,
    mark_sent,
    request_fingerprint,
    submit_job,
    time_limit_ms,
    withdraw_jobs,
)
from boards.jobs.work import FAIL_PREFIX, Result, compute_result, perform

__all__ = [
    "FAIL_PREFIX",
    "Claim",
    "IdempotencyKeyReused",
    "Intake",
    "LeaseHolder",
    "NotAccepted",
    "Outcome",
    "Result",
    "Runner",
    "Submission",
    "claim_job",
    "claim_jobs",
    "compute_result",
    "create_job",
    "fail_job",
    "finish_job",
    "finish_jobs",
    "get_job",
    "hand_back",
    "mark_sent",
    "oldest_queued_age",
    "perform",
    "renew_leases",
    "request_fingerprint",
    "run_job",
    "status_counts",
    "submit_job",
    "time_limit_ms",
    "withdraw_jobs",
]
