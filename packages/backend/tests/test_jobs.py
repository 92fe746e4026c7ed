"""Jobs in the database: claims, leases, fenced outcomes, idempotency keys, on both backends."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from boards.db import Database, get_database
from boards.jobs import (
    Claim,
    IdempotencyKeyReused,
    Outcome,
    Result,
    Runner,
    claim_job,
    claim_jobs,
    compute_result,
    create_job,
    fail_job,
    finish_job,
    finish_jobs,
    get_job,
    hand_back,
    mark_sent,
    oldest_queued_age,
    renew_leases,
    run_job,
    status_counts,
    time_limit_ms,
    withdraw_jobs,
)
from boards.models import Job, JobStatus, utcnow
from boards_testing.processes import base_env, free_port
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, ProgrammingError

LEASE = 15.0


def no_sleep(_: float) -> None:
    pass


def test_compute_result_is_deterministic() -> None:
    assert compute_result("the quick  brown fox\n") == {
        "characters": 21,
        "words": 4,
        "sha256": "c0f6d0edfd6d2da0c1d2e615263c469aae7daccc3b6254a541c42beb45b03594",
    }


def test_time_limit_counts_the_delay_on_top() -> None:
    assert time_limit_ms(30, 0) == 30_000
    assert time_limit_ms(30, 2.5) == 32_500


def test_run_job_succeeds_and_honours_the_delay(db: Database) -> None:
    job = create_job(db, "hello world", delay_seconds=1.5).job
    slept: list[float] = []
    assert run_job(db, job.id, lease=LEASE, sleep=slept.append) is Outcome.SUCCEEDED
    assert slept == [1.5]
    done = get_job(db, job.id)
    assert done is not None
    assert done.status == JobStatus.SUCCEEDED
    assert done.result == compute_result("hello world")
    assert done.attempts == 1
    assert done.lease_expires_at is None and done.finished_at is not None


def test_fail_payload_fails_deterministically(db: Database) -> None:
    job = create_job(db, "fail: boom").job
    assert run_job(db, job.id, lease=LEASE, sleep=no_sleep) is Outcome.FAILED
    done = get_job(db, job.id)
    assert done is not None and (done.status, done.error, done.result) == ("failed", "boom", None)


def test_a_duplicate_delivery_does_nothing(db: Database) -> None:
    job = create_job(db, "once").job
    assert run_job(db, job.id, lease=LEASE, sleep=no_sleep) is Outcome.SUCCEEDED
    ran_again: list[float] = []
    assert run_job(db, job.id, lease=LEASE, sleep=ran_again.append) is Outcome.DONE
    assert ran_again == []
    done = get_job(db, job.id)
    assert done is not None and done.attempts == 1


def test_a_live_lease_keeps_a_second_delivery_out(db: Database) -> None:
    job = create_job(db, "x").job
    first = claim_job(db, job.id, LEASE)
    assert isinstance(first, Claim) and first.attempt == 1
    assert claim_job(db, job.id, LEASE) is Outcome.HELD


def test_an_expired_lease_lets_the_next_delivery_take_over_and_fences_the_first(
    db: Database,
) -> None:
    job = create_job(db, "x").job
    first = claim_job(db, job.id, LEASE)
    assert isinstance(first, Claim)
    later = utcnow() + timedelta(seconds=LEASE + 1)
    second = claim_job(db, job.id, LEASE, now=later)
    assert isinstance(second, Claim) and second.attempt == 2
    # The first delivery comes back late: its outcome is dropped, the second one's counts.
    assert finish_job(db, first, Result(JobStatus.SUCCEEDED, result={"late": True})) is False
    assert finish_job(db, second, Result(JobStatus.SUCCEEDED, result={"on": "time"})) is True
    done = get_job(db, job.id)
    assert done is not None and done.result == {"on": "time"}


def test_renewing_keeps_only_the_current_claims_leases(db: Database) -> None:
    job = create_job(db, "x").job
    claim = claim_job(db, job.id, 3)
    assert isinstance(claim, Claim)
    before = get_job(db, job.id)
    assert before is not None and before.lease_expires_at is not None
    assert renew_leases(db, [claim], 60) == 1
    after = get_job(db, job.id)
    assert after is not None and after.lease_expires_at is not None
    assert after.lease_expires_at - before.lease_expires_at > timedelta(seconds=50)
    stale = Claim(job.id, claim.attempt + 1, "x", 0)
    assert renew_leases(db, [stale], 60) == 0
    assert renew_leases(db, [], 60) == 0


def test_hand_back_requeues_only_for_its_own_claim(db: Database) -> None:
    job = create_job(db, "x").job
    claim = claim_job(db, job.id, LEASE)
    assert isinstance(claim, Claim)
    assert hand_back(db, Claim(job.id, claim.attempt + 1, "x", 0)) is False
    assert hand_back(db, claim) is True
    queued = get_job(db, job.id)
    assert queued is not None and queued.status == "queued" and queued.lease_expires_at is None
    assert hand_back(db, claim) is False  # not running any more


def test_fail_never_overwrites_a_final_state(db: Database) -> None:
    job = create_job(db, "x").job
    run_job(db, job.id, lease=LEASE, sleep=no_sleep)
    assert fail_job(db, job.id, "late") is False
    stored = get_job(db, job.id)
    assert stored is not None and stored.status == "succeeded"


def test_missing_job_is_dropped(db: Database) -> None:
    assert run_job(db, "nope", lease=LEASE) is Outcome.MISSING


def test_idempotency_key_returns_the_first_job(db: Database) -> None:
    first = create_job(db, "x", 1.0, idempotency_key="k-1")
    again = create_job(db, "x", 1.0, idempotency_key="k-1")
    assert (first.replayed, again.replayed) == (False, True)
    assert again.job.id == first.job.id
    other = create_job(db, "x", 1.0, idempotency_key="k-2")
    assert other.job.id != first.job.id
    with pytest.raises(IdempotencyKeyReused):
        create_job(db, "y", 1.0, idempotency_key="k-1")
    with pytest.raises(IdempotencyKeyReused):
        create_job(db, "x", 2.0, idempotency_key="k-1")
    assert status_counts(db)["queued"] == 2


def withdraw_job(db: Database, job: Job) -> bool:
    return job.id in withdraw_jobs(db, [{"id": job.id, "enqueued_at": job.enqueued_at}])


def test_withdraw_only_the_untouched_row(db: Database) -> None:
    untouched = create_job(db, "a").job
    assert withdraw_job(db, untouched) is True
    assert get_job(db, untouched.id) is None

    replayed = create_job(db, "b", idempotency_key="kb").job
    assert mark_sent(db, replayed.id) is True  # a replay answered 202 for it meanwhile
    assert withdraw_job(db, replayed) is False
    assert get_job(db, replayed.id) is not None

    claimed = create_job(db, "c").job
    assert isinstance(claim_job(db, claimed.id, LEASE), Claim)
    assert withdraw_job(db, claimed) is False
    assert mark_sent(db, claimed.id) is False


def test_one_claim_statement_answers_for_every_job_in_a_batch(db: Database) -> None:
    queued, done = create_job(db, "q").job, create_job(db, "d").job
    run_job(db, done.id, lease=LEASE, sleep=no_sleep)
    held = create_job(db, "h").job
    assert isinstance(claim_job(db, held.id, LEASE), Claim)
    answers = claim_jobs(db, [queued.id, done.id, held.id, "nope"], LEASE)
    assert isinstance(answers[0], Claim) and answers[0].job_id == queued.id
    assert answers[1:] == [Outcome.DONE, Outcome.HELD, Outcome.MISSING]


def test_a_batch_of_finishes_drops_only_the_one_that_lost_its_lease(db: Database) -> None:
    kept, lost = create_job(db, "kept").job, create_job(db, "lost").job
    first, stale = claim_job(db, kept.id, LEASE), claim_job(db, lost.id, LEASE)
    assert isinstance(first, Claim) and isinstance(stale, Claim)
    taken_over = claim_job(db, lost.id, LEASE, now=utcnow() + timedelta(seconds=LEASE + 1))
    assert isinstance(taken_over, Claim)
    done = Result(JobStatus.SUCCEEDED, result={"n": 1})
    assert finish_jobs(db, [(first, done), (stale, done)]) == [True, False]
    assert finish_jobs(db, [(taken_over, done)]) == [True]
    later = get_job(db, lost.id)
    assert later is not None and (later.status, later.attempts) == ("succeeded", 2)


def test_threads_arriving_together_share_claims_and_finishes(db: Database) -> None:
    jobs = [create_job(db, f"job {n}").job for n in range(12)]
    runner = Runner(db, LEASE, sleep=no_sleep)
    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(runner.run, [job.id for job in jobs]))
    assert outcomes == [Outcome.SUCCEEDED] * 12
    assert status_counts(db)["succeeded"] == 12


def test_figures_for_metrics(db: Database) -> None:
    assert status_counts(db) == {"queued": 0, "running": 0, "succeeded": 0, "failed": 0}
    assert oldest_queued_age(db) == 0.0
    waiting = create_job(db, "w").job
    done = create_job(db, "d").job
    run_job(db, done.id, lease=LEASE, sleep=no_sleep)
    assert status_counts(db) == {"queued": 1, "running": 0, "succeeded": 1, "failed": 0}
    age = oldest_queued_age(db, now=waiting.created_at + timedelta(seconds=42))
    assert age == pytest.approx(42, abs=0.01)


def test_database_errors_propagate_for_retries(db: Database) -> None:
    job = create_job(db, "x").job
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE jobs"))
    with pytest.raises((OperationalError, ProgrammingError)):
        run_job(db, job.id, lease=LEASE)


# One process for both payloads: importing the actors module is most of the run.
ACTOR_SCRIPT = """
import sys
from boards.db import get_database
from boards.jobs import create_job, get_job
from boards.workers.actors import broker, process_job, settings

db = get_database(settings.effective_database_url)
print(process_job.actor_name, process_job.queue_name, process_job.options["max_retries"])
for payload in sys.argv[1:]:
    job = create_job(db, payload, delay_seconds=0.2).job
    process_job.fn(job.id)  # the actor's own function, called directly
    done = get_job(db, job.id)
    print(done.status, done.error, done.result)
"""


def test_actor_function(migrated_url: str) -> None:
    env = base_env(
        BOARDS_DATABASE_URL=migrated_url,
        BOARDS_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",  # never contacted here
        BOARDS_JOB_MAX_RETRIES="2",
    )
    proc = subprocess.run(
        [sys.executable, "-c", ACTOR_SCRIPT, "two words", "fail: nope"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    meta, succeeded, failed = proc.stdout.strip().splitlines()
    assert meta == "process_job boards-jobs 2"
    assert succeeded.startswith("succeeded None {'characters': 9, 'words': 2")
    assert failed.startswith("failed nope None")


def test_get_database_is_one_per_url(migrated_url: str) -> None:
    assert get_database(migrated_url) is get_database(migrated_url)
