"""Phase 2, faults, one at a time on the running stack: every job answered 202 reaches `succeeded`
or `failed` within the bounds the issue sets, a 503 never runs later, and no answer is a 500 or
shows our internals."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import httpx
import pytest
import redis
from boards_testing.waiting import wait_for

from tests.chaos.load import FINAL, Batch, Jobs, JobSpec, Load, specs, summary
from tests.chaos.recorder import Recorder, Row
from tests.chaos.stack import Stack

#: The issue's bounds: jobs lost with Redis are re-enqueued within 30 s of Redis answering again;
#: a killed worker's jobs are running again within 30 s.
BOUND = 30.0
#: Once re-delivered, the jobs (at most 3 s of work each) are final within this much more.
FINISH = 30.0
REFUSED_ERRORS = {"broker_unavailable", "database_unavailable"}


# -- shared checks -------------------------------------------------------------------------------


def check_answers(batch: Batch, allowed: tuple[int, ...] = (202,)) -> None:
    """Only ``allowed`` statuses, a 503 in the JSON error shape, and no internals anywhere."""
    unexpected = batch.unexpected(allowed)
    assert not unexpected, f"answers other than {allowed}: {summary(unexpected)}"
    leaks = batch.leaks()
    assert not leaks, f"internals in response bodies: {summary(leaks)}"
    for answer in batch.with_status(503):
        body = answer.body if isinstance(answer.body, dict) else {}
        assert body.get("error") in REFUSED_ERRORS and isinstance(body.get("detail"), str), (
            f"a 503 without the JSON error shape: {answer.text[:300]}"
        )


def check_refused_never_run(jobs: Jobs, batch: Batch) -> None:
    """A 503 promises the job will not run: no row of a refused payload may be other than failed
    (checked once everything else is final, so a wrongly queued row would have run by now)."""
    refused = batch.refused_payloads
    if refused:
        ran = {
            p: rows
            for p, rows in jobs.rows_for(refused).items()
            if any(status != "failed" for _, status in rows)
        }
        assert not ran, f"{len(ran)} jobs answered 503 have rows that run: {list(ran.items())[:3]}"


def submit(load: Load, row: Row, jobs_to_send: list[JobSpec], allowed=(202,)) -> Batch:
    """POST and wait for the answers; the accepted jobs join the row's promises."""
    batch = load.submit(jobs_to_send)
    row.ids += batch.accepted
    check_answers(batch, allowed)
    return batch


def settle(row: Row, jobs: Jobs, *, since: float) -> None:
    """The bound for queue losses: none of the row's jobs left `queued` BOUND seconds after the
    fault is over, then all final."""
    row.wait(
        "re-enqueued (none queued)",
        lambda: jobs.none_in(row.ids, ["queued"]),
        since=since,
        bound=BOUND,
    )
    finish(row, jobs, since=since)


def finish(row: Row, jobs: Jobs, *, since: float, bound: float = BOUND + FINISH) -> None:
    row.wait(
        "all final", lambda: jobs.all_in(row.ids, FINAL), since=since, bound=bound, recovery=True
    )


def get_job(stack: Stack, job_id: str) -> dict[str, Any]:
    response = httpx.get(f"{stack.api_url}/api/v1/jobs/{job_id}", timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


# -- the faults ----------------------------------------------------------------------------------


def test_redis_killed_after_jobs_accepted(
    stack: Stack, load: Load, jobs: Jobs, recorder: Recorder
) -> None:
    with recorder.phase("a. Redis SIGKILL after 120 jobs", stack, jobs) as row:
        submit(load, row, specs("redis-kill", 120, delay_seconds=0.5))
        stack.redis.kill()
        # With no broker the API answers at once: 503 (nothing stored) or 202 (it will run).
        down = submit(load, row, specs("redis-down", 8), allowed=(202, 503))
        stack.redis.start()
        stack.redis.wait_ready()
        settle(row, jobs, since=time.monotonic())
        check_refused_never_run(jobs, down)


def test_redis_flushed_after_jobs_accepted(
    stack: Stack, load: Load, jobs: Jobs, recorder: Recorder
) -> None:
    # More jobs than the two workers prefetch (2 x 100): some messages sit in Redis and go.
    with recorder.phase("b. Redis FLUSHALL after 300 jobs", stack, jobs) as row:
        submit(load, row, specs("flushall", 300, delay_seconds=1))
        client = redis.Redis.from_url(stack.redis_url, socket_timeout=5)
        lost_messages = sum(  # dramatiq's queues are lists under dramatiq:*
            client.llen(key)
            for key in client.scan_iter("dramatiq:*")
            if client.type(key) == b"list"
        )
        client.flushall()
        client.close()
        row.notes.append(f"{lost_messages} queued messages flushed")
        settle(row, jobs, since=time.monotonic())


def test_worker_killed_with_jobs_in_flight(
    stack: Stack, load: Load, jobs: Jobs, recorder: Recorder
) -> None:
    victim, other = stack.workers
    with recorder.phase("c. worker SIGKILL, 20 jobs in flight", stack, jobs) as row:
        other.stop()  # so the victim holds every job in flight
        submit(load, row, specs("worker-kill", 20, delay_seconds=3))
        wait_for(
            lambda: jobs.all_in(row.ids, ["running"]),
            timeout=30,
            what="all 20 jobs running on one worker",
        )
        attempts = {job_id: get_job(stack, job_id).get("attempts") for job_id in row.ids}
        victim.kill()
        killed = time.monotonic()
        other.start()  # as a restart policy would: both replicas back
        victim.start()

        def running_again() -> bool:
            """Every job final, or running once more (its attempts went up)."""
            for job_id in row.ids:
                job = get_job(stack, job_id)
                again = job.get("attempts") is not None and job["attempts"] != attempts[job_id]
                if job["status"] not in FINAL and not (job["status"] == "running" and again):
                    return False
            return True

        row.wait("running again", running_again, since=killed, bound=BOUND)
        finish(row, jobs, since=killed)


def test_api_killed_between_commit_and_enqueue(
    stack: Stack, load: Load, jobs: Jobs, recorder: Recorder
) -> None:
    keyed = specs("api-kill", 16, keyed=True)
    payloads = [spec.payload for spec in keyed]
    (started_at,) = jobs.query("SELECT now()")[0]
    with recorder.phase("d. API SIGKILL between commit and enqueue", stack, jobs) as row:
        stack.redis.pause()  # the API's enqueue hangs after the commit
        try:
            with load.running(keyed) as hung:
                # The API may refuse before committing; the checks below hold either way.
                with contextlib.suppress(pytest.fail.Exception):
                    wait_for(
                        lambda: all(jobs.rows_for(payloads).values()),
                        timeout=10,
                        what="the requests' rows committed",
                    )
                committed = sum(1 for rows in jobs.rows_for(payloads).values() if rows)
                stack.api.kill()
        finally:
            stack.redis.unpause()
        row.notes.append(
            f"{committed} of {len(keyed)} rows committed when the API died, "
            f"{len(hung.unexpected(allowed=()))} requests cut off"
        )
        stack.start_api()
        restarted = time.monotonic()
        retried = submit(load, row, keyed, allowed=(200, 202))  # the clients retry, same keys
        replayed = load.submit(keyed)
        check_answers(replayed, allowed=(200, 202))

        first = {a.spec.payload: a.job_id for a in retried.snapshot()}
        again = {a.spec.payload: a.job_id for a in replayed.snapshot()}
        assert again == first, "a replay with the same key must answer the same job"
        not_marked = [
            a.spec.payload
            for a in replayed.snapshot()
            if a.headers.get("idempotent-replayed") != "true"
        ]
        assert not not_marked, f"replays without `Idempotent-Replayed: true`: {not_marked[:3]}"
        rows = jobs.rows_for(payloads)
        assert {p: [job_id for job_id, _ in r] for p, r in rows.items()} == {
            p: [job_id] for p, job_id in first.items()
        }, "each key must yield exactly one job"

        finish(row, jobs, since=restarted, bound=BOUND)
        row.wait(
            "no unfinished row",
            lambda: (
                jobs.query(
                    "SELECT count(*) FROM jobs WHERE status NOT IN ('succeeded', 'failed')"
                    " AND created_at >= %s",  # this phase's rows, also those nobody got an id for
                    started_at,
                )
                == [(0,)]
            ),
            since=restarted,
            bound=BOUND,
        )


def test_postgres_restarted_under_load(
    stack: Stack, load: Load, jobs: Jobs, recorder: Recorder
) -> None:
    with recorder.phase("e. PostgreSQL restart under load", stack, jobs) as row:
        with load.streaming("pg-restart", delay_seconds=0.2) as batch:
            wait_for(lambda: len(batch.accepted) >= 50, timeout=30, what="50 jobs accepted")
            stack.postgres.restart()
            stack.postgres.wait_ready()
            back = time.monotonic()
            before = len(batch.accepted)
            wait_for(
                lambda: len(batch.accepted) >= before + 50,
                timeout=30,
                what="50 more jobs accepted after the restart",
            )
        row.ids = batch.accepted
        refused = len(batch.with_status(503))
        row.notes.append(f"{refused} answered 503 during the outage")
        check_answers(batch, allowed=(202, 503))
        finish(row, jobs, since=back)
        check_refused_never_run(jobs, batch)
