"""The worker's middleware, on their own (no broker needed)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from boards.workers.middleware import (
    HandBackOnShutdown,
    Heartbeat,
    RecordGiveUp,
    heartbeat_path,
    shutdown_grace,
)
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Shutdown


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


def test_hand_back_interrupts_messages_still_running(tmp_path: Path) -> None:
    middleware = HandBackOnShutdown(grace=0.3)
    started = threading.Event()
    outcome: list[str] = []

    def job() -> None:
        middleware.before_process_message(None, _message("job-1"))  # type: ignore[arg-type]
        started.set()
        try:
            for _ in range(100):  # 10 s unless interrupted
                time.sleep(0.1)
            outcome.append("finished")
        except Shutdown:
            outcome.append("interrupted")
        finally:
            middleware.after_process_message(None, _message("job-1"))  # type: ignore[arg-type]

    thread = threading.Thread(target=job)
    thread.start()
    assert started.wait(5)
    assert middleware.in_flight() == 1
    began = time.monotonic()
    middleware.before_worker_shutdown(None, None)  # type: ignore[arg-type]
    thread.join(timeout=5)
    assert outcome == ["interrupted"]
    assert 0.25 < time.monotonic() - began < 3
    assert middleware.in_flight() == 0
    middleware.after_worker_shutdown(None, None)  # type: ignore[arg-type]


def test_hand_back_leaves_quick_jobs_alone() -> None:
    middleware = HandBackOnShutdown(grace=0.5)
    interrupted: list[int] = []
    interrupt_all = middleware.interrupt_all

    def recording_interrupt_all() -> int:
        interrupted.append(interrupt_all())
        return interrupted[-1]

    middleware.interrupt_all = recording_interrupt_all  # type: ignore[method-assign]

    middleware.before_process_message(None, _message("job-2"))  # type: ignore[arg-type]
    middleware.before_worker_shutdown(None, None)  # type: ignore[arg-type]
    # The job finishes inside the grace period...
    middleware.after_process_message(None, _message("job-2"))  # type: ignore[arg-type]
    timer = middleware._timer
    assert timer is not None
    timer.join(timeout=5)
    # ...so when the timer fires, it has nothing in flight to interrupt.
    assert interrupted == [0]
    middleware.after_worker_shutdown(None, None)  # type: ignore[arg-type]


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
    assert recorded == [("job-9", "gave up after 4 attempt(s): RuntimeError: db down")]
