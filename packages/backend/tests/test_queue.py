"""The API's handle on the broker: sends reach Redis, and a broker that stops answering costs
one attempt, not one per request."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from boards import queue
from boards.queue import BrokerUnavailable, JobQueue, held_job_ids


@pytest.fixture
def silent_redis_url() -> Iterator[str]:
    """A port that accepts connections and never answers (the kernel completes the handshake
    of a listening socket nobody accepts on), like a Redis that hangs."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


def timed_failure(jobs: JobQueue) -> float:
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable):
        jobs.enqueue("job")
    return time.monotonic() - started


def test_after_a_failed_send_the_next_ones_fail_at_once_then_try_again(
    silent_redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue, "REDIS_SOCKET_TIMEOUT", 0.5)
    monkeypatch.setattr(queue, "FAIL_FAST_FOR", 0.5)
    jobs = JobQueue(silent_redis_url)
    assert timed_failure(jobs) >= 0.5  # waited out the socket timeout
    assert timed_failure(jobs) < 0.1  # the broker failed just now: no second wait
    assert jobs._failed_at is not None
    jobs._failed_at -= queue.FAIL_FAST_FOR  # the window has passed
    assert timed_failure(jobs) >= 0.5  # tried again


def test_a_send_that_works_ends_the_failure(
    clean_redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue, "FAIL_FAST_FOR", 60)
    jobs = JobQueue(clean_redis_url)
    jobs.enqueue("first")
    jobs._failed_at = time.monotonic() - 61  # a failure a minute ago
    jobs.enqueue("second")
    assert jobs._failed_at is None
    assert held_job_ids(jobs.broker) == {"first", "second"}
