"""Idle consumers that sleep, and wake the moment a job message is sent.

dramatiq's Redis consumer only polls: a short poll costs an idle worker CPU (and Redis), a long
one delays a job sent to a quiet worker. Here the poll is long (:data:`IDLE_WAIT`; dramatiq's
fetch is also the worker's heartbeat in Redis, so it stays well inside the heartbeat timeout) and
every sender publishes on :data:`boards.queue.WAKE_CHANNEL`, which one subscriber per process
turns into an event that ends the consumers' waits at once. A missed wake-up (Redis restarting,
the subscriber reconnecting) only costs latency: the poll still finds the message.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import TYPE_CHECKING, Any

from dramatiq.broker import Consumer, MessageProxy
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

from boards.logs import one_line
from boards.queue import WAKE_CHANNEL, wake_workers

if TYPE_CHECKING:
    from dramatiq import Message, Worker

logger = logging.getLogger("boards.worker.wakeup")

#: Seconds an idle consumer waits between polls when nothing wakes it.
IDLE_WAIT = 1.0
#: ... and while the worker stops (its threads finish their jobs first), so it exits promptly.
STOPPING_WAIT = 0.1
#: Seconds between the subscriber's reconnection attempts while Redis does not answer.
RECONNECT_DELAYS = (0.1, 0.5, 1.0, 2.0)
#: Seconds the subscriber waits for a message before it looks whether it should stop.
LISTEN_TIMEOUT = 5.0


def idle_wait(heartbeat_timeout: float) -> float:
    """The idle poll for a broker heartbeat timeout (seconds): a few polls fit in one."""
    return min(IDLE_WAIT, heartbeat_timeout / 4)


class WakeSubscriber:
    """One per process: a daemon thread (a greenlet under gevent) subscribed to the wake channel
    that sets every registered event; it reconnects for as long as the process runs."""

    def __init__(self, broker: RedisBroker, *, listen_timeout: float = LISTEN_TIMEOUT) -> None:
        self.broker = broker
        self.listen_timeout = listen_timeout
        #: How many times it has (re)subscribed; tests wait on it.
        self.subscriptions = 0
        self._events: weakref.WeakSet[threading.Event] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self) -> threading.Event:
        """A new event this subscriber sets on every wake-up; starts the subscriber."""
        event = threading.Event()
        with self._lock:
            self._events.add(event)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="boards-wakeup", daemon=True)
                self._thread.start()
        return event

    def unregister(self, event: threading.Event) -> None:
        with self._lock:
            self._events.discard(event)

    def wake_all(self) -> None:
        with self._lock:
            events = list(self._events)
        for event in events:
            event.set()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the thread to end (it is a daemon: it never holds a stopping process up)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            pubsub = self.broker.client.pubsub()
            try:
                pubsub.subscribe(WAKE_CHANNEL)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=self.listen_timeout)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        self.subscriptions += 1
                        if failures:
                            logger.debug("wake-up subscriber: Redis is back")
                        failures = 0
                    # A new subscription also wakes: a send may have come while it was away.
                    self.wake_all()
            except Exception as exc:
                if not failures:
                    logger.warning(
                        "wake-up subscriber: lost Redis, idle workers poll until it is back: %s",
                        one_line(exc),
                    )
                failures += 1
                self._stop.wait(RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS)) - 1])
            finally:
                pubsub.close()


class WakingConsumer(Consumer):
    """dramatiq's own Redis consumer, its idle sleep replaced by a wait on a wake-up event."""

    def __init__(self, inner: Consumer, broker: WakingRedisBroker) -> None:
        self.inner = inner
        self.broker = broker
        self.wake = broker.subscriber.register()

    def __iter__(self) -> WakingConsumer:
        return self

    def __next__(self) -> MessageProxy | None:
        # Cleared before the fetch: a message sent after it sets the event again, so the wait
        # below cannot miss it.
        self.wake.clear()
        message: MessageProxy | None = next(self.inner)
        if message is None:
            self.wake.wait(self.broker.wait_seconds)
        return message

    def _full(self) -> bool:
        return bool(self.inner.outstanding_message_count >= self.inner.prefetch)  # type: ignore[attr-defined]

    def ack(self, message: MessageProxy) -> None:
        full = self._full()
        try:
            self.inner.ack(message)
        finally:
            if full:  # a prefetch slot is free: fetch now, not at the next poll
                self.wake.set()

    def nack(self, message: MessageProxy) -> None:
        full = self._full()
        try:
            self.inner.nack(message)
        finally:
            if full:
                self.wake.set()

    def requeue(self, messages: Any) -> None:
        self.inner.requeue(messages)

    def close(self) -> None:
        self.broker.subscriber.unregister(self.wake)
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _ShortWaitsOnShutdown(Middleware):
    def __init__(self, broker: WakingRedisBroker) -> None:
        self.broker = broker

    def before_worker_shutdown(self, broker: Any, worker: Worker) -> None:
        self.broker.stopping = True
        self.broker.subscriber.wake_all()


class WakingRedisBroker(RedisBroker):
    """A :class:`RedisBroker` whose idle consumers wait on the wake channel (see the module) and
    whose sends (retries, delayed messages coming due, the reconciler's) publish on it."""

    def __init__(self, *args: Any, idle_wait: float = IDLE_WAIT, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.idle_wait = idle_wait
        self.stopping = False
        self.subscriber = WakeSubscriber(self)
        self.add_middleware(_ShortWaitsOnShutdown(self))

    @property
    def wait_seconds(self) -> float:
        return STOPPING_WAIT if self.stopping else self.idle_wait

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 0) -> Consumer:
        # dramatiq's consumer with a zero timeout sleeps 0 s after an empty fetch; the
        # wrapper does the waiting.
        return WakingConsumer(super().consume(queue_name, prefetch, timeout=0), self)

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        sent = super().enqueue(message, delay=delay)
        wake_workers(self.client)
        return sent

    def close(self) -> None:
        self.subscriber.stop(timeout=0)
        super().close()
