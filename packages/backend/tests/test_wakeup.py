"""Idle consumers sleep and a sent job wakes them (boards.workers.wakeup), on a real Redis.

Bounded: three tests, each under about two seconds.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from boards.queue import QUEUE_NAME, JobQueue, job_message, redis_broker, wake_workers
from boards.workers.wakeup import WakingConsumer, WakingRedisBroker
from boards_testing.waiting import wait_for
from dramatiq.broker import MessageProxy

#: Long enough that a fetch within WOKEN_WITHIN can only come from the wake-up.
IDLE_WAIT = 5.0
WOKEN_WITHIN = 0.5


@pytest.fixture
def broker(clean_redis_url: str) -> Iterator[WakingRedisBroker]:
    broker = redis_broker(clean_redis_url, broker_class=WakingRedisBroker, idle_wait=IDLE_WAIT)
    assert isinstance(broker, WakingRedisBroker)
    broker.subscriber.listen_timeout = 0.2  # so the fixture's stop is quick
    broker.declare_queue(QUEUE_NAME)
    yield broker
    broker.subscriber.stop(timeout=2)
    broker.client.close()


def subscribed(broker: WakingRedisBroker, count: int = 1) -> None:
    wait_for(
        lambda: broker.subscriber.subscriptions >= count,
        timeout=5,
        interval=0.01,
        what=f"subscription #{count}",
    )


def receive_in_thread(consumer: WakingConsumer) -> queue.Queue[tuple[float, MessageProxy]]:
    """Iterate ``consumer`` in a thread until one message comes; returns where it lands."""
    received: queue.Queue[tuple[float, MessageProxy]] = queue.Queue()

    def run() -> None:
        for message in consumer:
            if message is not None:
                received.put((time.monotonic(), message))
                return

    threading.Thread(target=run, daemon=True).start()
    # Idle: its first fetch found nothing, so it now waits (or is about to).
    wait_for(lambda: consumer.inner.misses >= 1, timeout=5, interval=0.01, what="an empty fetch")  # type: ignore[attr-defined]
    return received


def test_a_sent_job_wakes_an_idle_consumer(broker: WakingRedisBroker, clean_redis_url: str) -> None:
    consumer = broker.consume(QUEUE_NAME, prefetch=1)
    assert isinstance(consumer, WakingConsumer)
    subscribed(broker)
    received = receive_in_thread(consumer)

    api = JobQueue(clean_redis_url)  # the API's send: a plain broker, then the wake-up
    sent_at = time.monotonic()
    api.enqueue("job-1")
    at, message = received.get(timeout=IDLE_WAIT * 2)
    api.close()

    assert list(message.args) == ["job-1"]
    assert at - sent_at < WOKEN_WITHIN, f"fetched {at - sent_at:.3f}s after the send"
    consumer.ack(message)
    consumer.close()


def test_a_missed_wake_up_is_made_good_by_the_poll(clean_redis_url: str) -> None:
    broker = redis_broker(clean_redis_url, broker_class=WakingRedisBroker, idle_wait=0.3)
    assert isinstance(broker, WakingRedisBroker)
    broker.subscriber.listen_timeout = 0.2
    broker.declare_queue(QUEUE_NAME)
    consumer = broker.consume(QUEUE_NAME, prefetch=1)
    assert isinstance(consumer, WakingConsumer)
    received = receive_in_thread(consumer)
    try:
        # Sent without a publish: nothing wakes the consumer but its next poll.
        plain = redis_broker(clean_redis_url)
        plain.enqueue(job_message("job-2"))
        _, message = received.get(timeout=3)
        assert list(message.args) == ["job-2"]
        consumer.ack(message)
        consumer.close()
    finally:
        broker.subscriber.stop(timeout=2)
        broker.client.close()


def test_the_subscriber_comes_back_after_its_connection_is_killed(
    broker: WakingRedisBroker, clean_redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    event = broker.subscriber.register()
    subscribed(broker)
    admin = redis.Redis.from_url(clean_redis_url)
    with caplog.at_level(logging.WARNING, logger="boards.worker.wakeup"):
        assert admin.client_kill_filter(_type="pubsub") == 1
        subscribed(broker, 2)
    event.clear()
    wake_workers(admin)
    admin.close()

    assert event.wait(WOKEN_WITHIN)
    lost = [r for r in caplog.records if "lost Redis" in r.getMessage()]
    assert len(lost) == 1
