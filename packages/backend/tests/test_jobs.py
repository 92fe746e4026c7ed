"""Job logic (what the actor runs) against SQLite, and the actor module itself."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from types import SimpleNamespace

import pytest
from boards.db import get_database
from boards.jobs import compute_result, create_job, get_job, mark_failed, mark_requeued, run_job
from boards.models import JobStatus
from sqlalchemy import text
from sqlalchemy.exc import OperationalError


def test_compute_result_is_deterministic() -> None:
    payload = "the quick  brown fox\n"
    assert compute_result(payload) == {
        "characters": 21,
        "words": 4,
        "sha256": hashlib.sha256(payload.encode()).hexdigest(),
    }


def test_run_job_succeeds_and_honours_the_delay(migrated_sqlite_url: str) -> None:
    db = get_database(migrated_sqlite_url)
    job = create_job(db, "hello world", delay_seconds=1.5)
    slept: list[float] = []
    assert run_job(db, job.id, sleep=slept.append) == JobStatus.SUCCEEDED
    assert slept == [1.5]
    done = get_job(db, job.id)
    assert done is not None
    assert done.status == "succeeded"
    assert done.result == compute_result("hello world")
    assert done.error is None
    assert done.updated_at >= done.created_at
    assert done.created_at.tzinfo is not None


def test_fail_payload_fails_deterministically(migrated_sqlite_url: str) -> None:
    db = get_database(migrated_sqlite_url)
    job = create_job(db, "fail: boom")
    assert run_job(db, job.id, sleep=lambda _: None) == JobStatus.FAILED
    failed = get_job(db, job.id)
    assert failed is not None
    assert (failed.status, failed.error, failed.result) == ("failed", "boom", None)


def test_finished_jobs_are_not_run_again(migrated_sqlite_url: str) -> None:
    db = get_database(migrated_sqlite_url)
    job = create_job(db, "once")
    run_job(db, job.id, sleep=lambda _: None)
    before = get_job(db, job.id)
    assert run_job(db, job.id, sleep=lambda _: pytest.fail("ran twice")) == "succeeded"
    after = get_job(db, job.id)
    assert before is not None and after is not None
    assert after.updated_at == before.updated_at


def test_missing_job_is_dropped(migrated_sqlite_url: str) -> None:
    assert run_job(get_database(migrated_sqlite_url), "nope") == "missing"


def test_state_changes_only_from_the_right_states(migrated_sqlite_url: str) -> None:
    db = get_database(migrated_sqlite_url)
    job = create_job(db, "x")
    assert mark_requeued(db, job.id) is False  # queued, not running
    run_job(db, job.id, sleep=lambda _: None)
    assert mark_failed(db, job.id, "late") is False  # already succeeded
    stored = get_job(db, job.id)
    assert stored is not None and stored.status == "succeeded"


def test_database_errors_propagate_for_retries(migrated_sqlite_url: str) -> None:
    db = get_database(migrated_sqlite_url)
    job = create_job(db, "x")
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE jobs"))
    with pytest.raises(OperationalError):
        run_job(db, job.id)


ACTOR_SCRIPT = """
import sys
from boards.db import get_database
from boards.jobs import create_job, get_job
from boards.workers.actors import broker, process_job, settings

db = get_database(settings.effective_database_url)
job = create_job(db, sys.argv[1], delay_seconds=0.2)
process_job.fn(job.id)  # the actor's own function, called directly
done = get_job(db, job.id)
print(process_job.actor_name, process_job.queue_name, process_job.options["max_retries"])
print(done.status, done.error, done.result)
"""


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("two words", "succeeded None {'characters': 9, 'words': 2"),
        ("fail: nope", "failed nope None"),
    ],
)
def test_actor_function_on_sqlite(
    h: SimpleNamespace, migrated_sqlite_url: str, payload: str, expected: str
) -> None:
    env = h.base_env(
        BOARDS_DATABASE_URL=migrated_sqlite_url,
        BOARDS_REDIS_URL=f"redis://127.0.0.1:{h.free_port()}/0",  # never contacted here
        BOARDS_JOB_MAX_RETRIES="2",
    )
    proc = subprocess.run(
        [sys.executable, "-c", ACTOR_SCRIPT, payload],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    meta, outcome = proc.stdout.strip().splitlines()
    assert meta == "process_job boards-jobs 2"
    assert outcome.startswith(expected)
