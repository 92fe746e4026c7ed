"""The worker's middleware, on their own and as the real stack on dramatiq's StubBroker (no
Redis needed): retries, time limits, and a failed job's error that names the kind of failure, never
its SQL."""

from __future__ import annotations

import io
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boards.db
import dramatiq
import pytest
from boards.api.factory import create_app
from boards.db import Database, get_database
from boards.jobs import Runner, create_job, get_job
from boards.queue import ACTOR_NAME, QUEUE_NAME
from boards.settings import Settings
from boards.workers.broker import job_options, worker_middleware
from boards.workers.middleware import (
    BROKER_UNAVAILABLE,
    DATABASE_ERROR,
    DATABASE_UNAVAILABLE,
    TIME_LIMIT,
    WORK_FAILED,
    HandBackOnShutdown,
    Heartbeat,
    LeaseKeeper,
    RecordGiveUp,
    failure_reason,
    give_up_error,
    heartbeat_path,
    shutdown_grace,
)
from boards.workers.process import process_delivery
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Shutdown, TimeLimitExceeded
from fastapi.testclient import TestClient
from redis import exceptions as redis_exc
from sqlalchemy import exc as sa_exc
from sqlalchemy import make_url


def _message(*args: object) -> MessageProxy:
    return MessageProxy(
        Message(queue_name="q", actor_name="process_job", args=args, kwargs={}, options={})
    )


def test_heartbeat_only_after_a_successful_ping(tmp_path: Path) -> None:
    answers = {"ok": False}

    def ping() -> bool:
        if not answers["ok"]:
            raise ConnectionError("redis is down")
        return True

    beat = Heartbeat(tmp_path / "run", ping=ping)
    path = heartbeat_path(tmp_path / "run")
    assert path.name == f"worker-{os.getpid()}.heartbeat"

    beat.announce()  # at boot: the file exists, but reads as stale
    assert path.stat().st_mtime == 0
    assert beat.beat() is False
    assert path.stat().st_mtime == 0
    assert beat.failures == 1

    answers["ok"] = True
    assert beat.beat() is True
    assert time.time() - path.stat().st_mtime < 5
    assert beat.failures == 0

    beat.after_worker_shutdown(None, None)  # type: ignore[arg-type]
    assert not path.exists()


class FakeClock:
    """Time that passes only when HandBackOnShutdown sleeps (a real yield lets threads run)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        time.sleep(0.001)


class FakeWorker:
    def __init__(self) -> None:
        self.workers = [self]
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


def test_hand_back_interrupts_messages_still_running_after_the_grace() -> None:
    clock = FakeClock()
    middleware = HandBackOnShutdown(grace=4, clock=clock, sleep=clock.sleep)
    started, release = threading.Event(), threading.Event()
    outcome: list[tuple[str, float]] = []

    def job() -> None:
        middleware.before_process_message(None, _message("job-1"))  # type: ignore[arg-type]
        started.set()
        try:
            while not release.wait(0.001):  # Python-level waits: the interruption lands here
                pass
            outcome.append(("finished", clock.now))
        except Shutdown:
            outcome.append(("interrupted", clock.now))
        finally:
            middleware.after_process_message(None, _message("job-1"))  # type: ignore[arg-type]

    thread = threading.Thread(target=job)
    thread.start()
    assert started.wait(5)
    worker = FakeWorker()
    middleware.before_worker_shutdown(None, worker)  # type: ignore[arg-type]
    thread.join(timeout=5)
    release.set()
    assert worker.stopped  # no new message is taken while in-flight ones finish
    ((what, when),) = outcome
    assert what == "interrupted"
    assert 4 <= when < 4 + HandBackOnShutdown.HAND_BACK_WAIT  # after the grace, not before
    assert middleware.in_flight() == 0


def test_hand_back_leaves_jobs_that_finish_in_the_grace_alone() -> None:
    clock = FakeClock()
    middleware = HandBackOnShutdown(grace=4, clock=clock, sleep=clock.sleep)
    middleware.before_process_message(None, _message("job-2"))  # type: ignore[arg-type]
    interrupted: list[int] = []
    middleware.interrupt_all = lambda: interrupted.append(1) or 1  # type: ignore[method-assign]

    def finish_at_two_seconds(seconds: float) -> None:
        clock.now += seconds
        if clock.now >= 2:
            middleware.after_process_message(None, _message("job-2"))  # type: ignore[arg-type]

    middleware.sleep = finish_at_two_seconds
    middleware.before_worker_shutdown(None, FakeWorker())  # type: ignore[arg-type]
    assert interrupted == []
    assert 2 <= clock.now < 2.1  # stopped waiting as soon as nothing was in flight


def test_hand_back_counts_greenlets_under_gevent() -> None:
    """dramatiq's gevent manager keeps a set of greenlets, not of thread ids: an idle worker
    (an empty set) stops without an error, a busy one counts its greenlets."""
    middleware = HandBackOnShutdown(grace=4)

    class GeventManager:  # the attributes of dramatiq's _GeventShutdownManager
        def __init__(self) -> None:
            self.notification_greenlets: set[tuple[int, object]] = set()

        def shutdown(self) -> None:
            raise AssertionError("nothing to interrupt")

    middleware.manager = GeventManager()  # type: ignore[assignment]
    assert middleware.in_flight() == 0
    middleware.before_worker_shutdown(None, FakeWorker())  # type: ignore[arg-type]
    middleware.manager.notification_greenlets.add((1, object()))  # type: ignore[attr-defined]
    assert middleware.in_flight() == 1


@pytest.mark.parametrize(("timeout", "grace"), [(5, 4), (1, 0.5), (10, 9)])
def test_shutdown_grace_leaves_time_to_hand_back(timeout: float, grace: float) -> None:
    assert shutdown_grace(timeout) == grace


def test_give_up_marks_the_job_failed() -> None:
    recorded: list[tuple[str, str]] = []
    middleware = RecordGiveUp("process_job", lambda job_id, error: recorded.append((job_id, error)))
    message = _message("job-9")
    message.options["retries"] = 4
    # Still being retried: nothing recorded.
    middleware.after_process_message(None, message, exception=RuntimeError("db down"))  # type: ignore[arg-type]
    assert recorded == []
    message.fail()
    middleware.after_process_message(None, message, exception=RuntimeError("db down"))  # type: ignore[arg-type]
    assert recorded == [("job-9", f"the job failed after 4 attempts: {WORK_FAILED}")]


@pytest.mark.parametrize(
    ("exception", "reason"),
    [
        (sa_exc.OperationalError("UPDATE jobs", ("S3",), OSError("locked")), DATABASE_UNAVAILABLE),
        (sa_exc.InterfaceError("SELECT 1", {}, OSError("closed")), DATABASE_UNAVAILABLE),
        (sa_exc.TimeoutError("QueuePool limit reached"), DATABASE_UNAVAILABLE),
        (sa_exc.IntegrityError("INSERT INTO jobs", ("S3",), OSError("dup")), DATABASE_ERROR),
        (redis_exc.ConnectionError("Error 111 connecting to redis:6379"), BROKER_UNAVAILABLE),
        (TimeLimitExceeded(), TIME_LIMIT),
        (ValueError("S3CRET"), WORK_FAILED),
    ],
)
def test_a_failed_jobs_error_names_the_kind_of_failure_only(
    exception: BaseException, reason: str
) -> None:
    assert failure_reason(exception) == reason
    assert give_up_error(1, exception) == f"the job failed after 1 attempt: {reason}"


# -- the real stack, in build_broker's order, on dramatiq's StubBroker ---------------------------


def _stub_worker(
    settings: Settings, db: Database, body: Callable[[str], None]
) -> tuple[StubBroker, dramatiq.Actor[[str], None]]:
    broker = StubBroker(middleware=[])
    for middleware in worker_middleware(settings, db, ping=lambda: True, reconcile=None):
        broker.add_middleware(middleware)
    actor = dramatiq.actor(
        body, actor_name=ACTOR_NAME, queue_name=QUEUE_NAME, broker=broker, **job_options(settings)
    )
    return broker, actor


def _drain(broker: StubBroker) -> None:
    broker.emit_after("process_boot")  # what dramatiq's CLI does: starts TimeLimit's timer
    worker = dramatiq.Worker(broker, worker_timeout=50, worker_threads=1)
    worker.start()
    try:
        broker.join(QUEUE_NAME, timeout=30_000, fail_fast=False)
        worker.join()
    finally:
        worker.stop()


def _python_level_sleep(seconds: float) -> None:
    """time.sleep in small steps, so dramatiq's TimeLimit (an async exception) can land."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.fixture
def retrying_settings(make_settings: Callable[..., Settings], migrated_sqlite_url: str) -> Settings:
    """A migrated SQLite database; a job gets two retries, milliseconds apart."""
    return make_settings(
        database_url=migrated_sqlite_url,
        job_max_retries=2,
        job_retry_min_backoff=0.01,
        job_retry_max_backoff=0.02,
    )


def test_the_stack_marks_a_job_failed_when_retries_run_out(
    retrying_settings: Settings, migrated_sqlite_url: str
) -> None:
    settings = retrying_settings
    db = get_database(migrated_sqlite_url)
    attempts: list[str] = []

    def always_fails(job_id: str) -> None:
        attempts.append(job_id)
        raise RuntimeError("the database is down")

    broker, actor = _stub_worker(settings, db, always_fails)
    job = create_job(db, "x").job
    actor.send(job.id)
    _drain(broker)
    assert attempts == [job.id] * 3  # the first try and two retries
    stored = get_job(db, job.id)
    assert stored is not None and stored.status == "failed"
    assert stored.error == "the job failed after 3 attempts: the job's work raised an error"


def test_a_job_failed_by_a_locked_database_says_so_without_sql(
    retrying_settings: Settings,
    migrated_sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    log_stream: io.StringIO,
) -> None:
    """A second connection holds ``BEGIN EXCLUSIVE`` while the job's retries run out: the job's
    ``error`` names the kind of failure, the log has the driver's text under the job's id, and
    no API answer carries SQL, parameters or the driver's text."""
    real_options = boards.db.engine_options

    def short_lock_wait(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        # SQLite waits BOARDS' connect timeout for a lock; 0.2 s gives the same error sooner.
        options = real_options(url, *args, **kwargs)
        options["connect_args"] = {**options["connect_args"], "timeout": 0.2}
        return options

    monkeypatch.setattr(boards.db, "engine_options", short_lock_wait)
    settings = retrying_settings
    db = get_database(migrated_sqlite_url)
    job = create_job(db, "x").job
    locker = sqlite3.connect(
        str(make_url(migrated_sqlite_url).database), isolation_level=None, check_same_thread=False
    )
    locker.execute("BEGIN EXCLUSIVE")
    attempts: list[str] = []

    def body(job_id: str) -> None:
        attempts.append(job_id)
        try:
            process_delivery(Runner(db, 15), job_id, leases=leases, resend=lambda: None)
        finally:
            if len(attempts) == 3:  # the last attempt: let the give-up be recorded
                locker.execute("ROLLBACK")

    broker, actor = _stub_worker(settings, db, body)
    leases = next(m for m in broker.middleware if isinstance(m, LeaseKeeper))
    answers: list[str] = []
    with TestClient(create_app(settings)) as client:
        # While the lock is held, the API answers 503 and says nothing of why in SQL terms.
        for response in (
            client.get(f"/api/v1/jobs/{job.id}"),
            client.get("/api/v1/system/health"),
            client.get("/health/ready"),
        ):
            assert response.status_code in (200, 503), response.text
            answers.append(response.text)
        actor.send(job.id)
        _drain(broker)
        response = client.get(f"/api/v1/jobs/{job.id}")
        answers.append(response.text)
    locker.close()
    assert attempts == [job.id] * 3
    stored = response.json()
    assert (stored["status"], stored["error"]) == (
        "failed",
        "the job failed after 3 attempts: the database was unavailable",
    )
    for answer in answers:
        for internal in ("SQL", "UPDATE", "SELECT", "parameters", "sqlite", "locked", "Trace"):
            assert internal not in answer, answer
        assert "'running'" not in answer, answer
    log = log_stream.getvalue()
    (line,) = [line for line in log.splitlines() if f"job {job.id} failed after" in line]
    assert "(the database was unavailable): OperationalError: (sqlite3.OperationalError) " in line
    assert "database is locked" in line
    assert "Traceback" in log
    assert "UPDATE jobs" not in log and "'running'" not in log, log


def test_the_stack_fails_a_job_over_its_time_limit(
    make_settings: Callable[..., Settings], migrated_sqlite_url: str
) -> None:
    settings = make_settings(database_url=migrated_sqlite_url, job_time_limit=0.3)
    db = get_database(migrated_sqlite_url)
    broker, _ = _stub_worker(settings, db, lambda job_id: None)
    leases = next(m for m in broker.middleware if isinstance(m, LeaseKeeper))

    def body(job_id: str) -> None:
        runner = Runner(db, 15, sleep=_python_level_sleep)
        process_delivery(runner, job_id, leases=leases, resend=lambda: None)

    actor = dramatiq.actor(
        body, actor_name="slow_job", queue_name=QUEUE_NAME, broker=broker, **job_options(settings)
    )
    job = create_job(db, "slow", delay_seconds=5).job  # the delay is longer than the limit
    actor.send(job.id)
    _drain(broker)
    stored = get_job(db, job.id)
    assert stored is not None
    assert (stored.status, stored.error) == (
        "failed",
        "the job failed after 1 attempt: the job ran over its time limit",
    )
