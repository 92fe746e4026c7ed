"""The reconciler against real Redis, on SQLite and PostgreSQL: what the queue lost is re-sent,
what it holds is not, expired leases come back, passes never overlap, and finished jobs past the
retention are deleted in bounded batches."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from boards.db import Database, get_database
from boards.jobs import (
    Claim,
    Result,
    claim_job,
    create_job,
    fail_job,
    finish_job,
    get_job,
    submit_job,
)
from boards.jobs import retention as retention_sql
from boards.jobs.recover import LOCK_KEY
from boards.models import JobStatus, utcnow
from boards.queue import JobQueue, held_job_ids, redis_broker
from boards.workers import reconciler as reconciler_module
from boards.workers.reconciler import Reconciler
from boards_testing.processes import free_port
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import text

QUEUED_AFTER = 10.0
LEASE = 15.0
RETENTION = 3600.0


def reconciler(db: Database, broker: RedisBroker, at: datetime, **options: float) -> Reconciler:
    return Reconciler(
        database=db,
        broker=broker,
        max_deliveries=int(options.get("max_deliveries", 3)),
        queued_after=QUEUED_AFTER,
        job_time_limit=30,
        retention=RETENTION,
        now=lambda: at,
    )


@pytest.fixture
def broker(clean_redis_url: str) -> RedisBroker:
    return redis_broker(clean_redis_url)


def later(seconds: float) -> datetime:
    return utcnow() + timedelta(seconds=seconds)


def test_a_job_the_queue_lost_is_sent_again(db: Database, broker: RedisBroker) -> None:
    job = create_job(db, "lost").job  # stored, never sent: the API died, or Redis was flushed
    report = reconciler(db, broker, later(QUEUED_AFTER + 1)).run_once()
    assert (report.outcome, report.lost, report.sent) == ("ok", [job.id], 1)
    assert held_job_ids(broker) == {job.id}
    stored = get_job(db, job.id)
    assert stored is not None and (stored.status, stored.redeliveries) == ("queued", 1)


def test_young_and_held_jobs_are_left_alone(
    db: Database, broker: RedisBroker, clean_redis_url: str
) -> None:
    young = create_job(db, "young").job
    held = create_job(db, "held").job
    JobQueue(clean_redis_url).enqueue(held.id)
    assert reconciler(db, broker, later(1)).run_once().lost == []  # young: not yet suspicious

    report = reconciler(db, broker, later(QUEUED_AFTER + 1)).run_once()
    assert report.lost == [young.id]
    assert report.seen == 1
    assert broker.do_qsize("boards-jobs") == 2  # held once, young re-sent once: no duplicate
    stored = get_job(db, held.id)
    assert stored is not None and stored.redeliveries == 0


def test_a_running_job_whose_lease_expired_is_requeued_and_sent(
    db: Database, broker: RedisBroker
) -> None:
    job = create_job(db, "x").job
    assert isinstance(claim_job(db, job.id, LEASE), Claim)
    assert reconciler(db, broker, later(LEASE - 1)).run_once().lease_expired == []

    report = reconciler(db, broker, later(LEASE + 1)).run_once()
    assert report.lease_expired == [job.id]
    assert held_job_ids(broker) == {job.id}
    stored = get_job(db, job.id)
    assert stored is not None
    assert (stored.status, stored.attempts, stored.redeliveries) == ("queued", 1, 1)
    assert stored.lease_expires_at is None


def test_a_job_that_keeps_losing_its_worker_fails_in_the_end(
    db: Database, broker: RedisBroker
) -> None:
    job = create_job(db, "poison").job
    moment = utcnow()
    for attempt in range(1, 3):
        claim = claim_job(db, job.id, LEASE, now=moment)
        assert isinstance(claim, Claim) and claim.attempt == attempt
        moment += timedelta(seconds=LEASE + 1)
        assert reconciler(db, broker, moment, max_deliveries=2).run_once().lease_expired == (
            [job.id] if attempt < 2 else []
        )
    stored = get_job(db, job.id)
    assert stored is not None and stored.status == JobStatus.FAILED
    assert stored.error == "gave up: its worker was lost 2 time(s)"


def test_redis_down_defers_resends_but_keeps_the_database_right(db: Database) -> None:
    job = create_job(db, "x").job
    claim_job(db, job.id, LEASE)
    down = redis_broker(f"redis://127.0.0.1:{free_port()}/0")
    report = reconciler(db, down, later(LEASE + QUEUED_AFTER + 1)).run_once()
    assert report.outcome == "broker_down"
    assert report.sent == 0
    stored = get_job(db, job.id)
    assert stored is not None and stored.status == "queued"  # found again once Redis is back


def test_passes_never_overlap_on_postgresql(migrated_pg_url: str, broker: RedisBroker) -> None:
    db = get_database(migrated_pg_url)
    create_job(db, "x")
    with db.engine.connect() as other:
        other.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})  # a pass runs
        report = reconciler(db, broker, later(QUEUED_AFTER + 1)).run_once()
        assert report.outcome == "skipped" and report.lost == []
        other.rollback()
    assert reconciler(db, broker, later(QUEUED_AFTER + 1)).run_once().outcome == "ok"


def finished(db: Database, payload: str) -> str:
    job = create_job(db, payload).job
    claim = claim_job(db, job.id, LEASE)
    assert isinstance(claim, Claim)
    assert finish_job(db, claim, Result(JobStatus.SUCCEEDED, result={"ok": True}))
    return job.id


def test_finished_jobs_past_the_retention_are_deleted_and_nothing_else(
    db: Database, broker: RedisBroker
) -> None:
    succeeded = finished(db, "done")
    failed = create_job(db, "given up").job.id
    assert fail_job(db, failed, "retries spent")
    queued = create_job(db, "waiting").job.id
    running = create_job(db, "running").job.id
    assert isinstance(claim_job(db, running, RETENTION * 2), Claim)

    assert reconciler(db, broker, later(RETENTION - 60)).run_once().pruned == 0
    report = reconciler(db, broker, later(RETENTION + 60)).run_once()
    assert report.pruned == 2
    assert get_job(db, succeeded) is None and get_job(db, failed) is None
    kept = [get_job(db, job_id) for job_id in (queued, running)]
    assert [job.status for job in kept if job] == ["queued", "running"]


def test_pruning_goes_in_bounded_batches(
    db: Database, broker: RedisBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reconciler_module, "PRUNE_BATCH", 2)
    monkeypatch.setattr(reconciler_module, "PRUNE_BATCHES", 2)
    for index in range(5):
        finished(db, f"done {index}")
    passes = [reconciler(db, broker, later(RETENTION + 60)).run_once().pruned for _ in range(3)]
    assert passes == [4, 1, 0]


def test_a_key_of_a_pruned_job_is_free_again(
    db: Database, broker: RedisBroker, clean_redis_url: str
) -> None:
    queue = JobQueue(clean_redis_url)
    first = submit_job(db, queue, "p", 0, idempotency_key="k", job_time_limit=30).job
    claim = claim_job(db, first.id, LEASE)
    assert isinstance(claim, Claim)
    assert finish_job(db, claim, Result(JobStatus.SUCCEEDED, result={}))
    assert reconciler(db, broker, later(RETENTION + 60)).run_once().pruned == 1

    again = submit_job(db, queue, "p", 0, idempotency_key="k", job_time_limit=30)
    assert not again.replayed and again.job.id != first.id


def test_one_replica_prunes_at_a_time_on_postgresql(
    migrated_pg_url: str, broker: RedisBroker
) -> None:
    db = get_database(migrated_pg_url)
    finished(db, "done")
    with db.engine.connect() as other:
        other.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": retention_sql.LOCK_KEY})
        assert reconciler(db, broker, later(RETENTION + 60)).run_once().pruned == 0
        other.rollback()
    assert reconciler(db, broker, later(RETENTION + 60)).run_once().pruned == 1
