"""The Redis side shared by the API (enqueue, probe) and the worker (broker construction).

redis-py and dramatiq are imported by the functions that use them, not by this module: the API
imports it at start and would otherwise spend a fifth of its start-up on them before it answers
``/health``; the API warms them up right after it starts serving (:meth:`JobQueue.warm_up`).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from boards import defaults

if TYPE_CHECKING:
    import redis
    from dramatiq import Message
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.middleware import Middleware

logger = logging.getLogger("boards.queue")

#: The dramatiq queue and actor the API sends to and the worker consumes.
QUEUE_NAME = "boards-jobs"
ACTOR_NAME = "process_job"

#: Seconds to wait for Redis to accept a connection / answer a command.
REDIS_CONNECT_TIMEOUT = 2.0
REDIS_SOCKET_TIMEOUT = 5.0

#: After a send fails, the sends of the next second fail at once instead of each waiting out an
#: attempt of its own (the name lookup of a host that just died can alone take 10 s): requests
#: behind a failing send get their 503 in milliseconds, and the first send after it tries again.
FAIL_FAST_FOR = 1.0

#: Share of broker commands that also run dramatiq's queue maintenance, which moves the
#: unacknowledged messages of workers silent for longer than the heartbeat timeout back onto
#: their queue. dramatiq's default (0.1 %) leaves a killed worker's messages stranded for
#: minutes on a quiet queue; at 5 % an idle worker's fetches run it every few seconds. (The
#: reconciler's lease check is the bound we promise; this is the fast path.)
MAINTENANCE_PERCENT = 5

#: Redis pub/sub channel every sender of a job message publishes on, so idle workers fetch at
#: once instead of at their next (slow) poll (boards.workers.wakeup).
WAKE_CHANNEL = "boards:wake"


def redis_client(url: str) -> redis.Redis:
    """A client that fails fast: short timeouts and no hidden retries (callers decide)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
        socket_timeout=REDIS_SOCKET_TIMEOUT,
        socket_keepalive=True,
        health_check_interval=15,
        retry=Retry(NoBackoff(), 0),
    )


def wake_workers(client: redis.Redis) -> None:
    """Tell idle workers a message was just sent. Best effort: a missed wake-up only costs
    latency (the workers' poll still finds the message), so a failure is logged at debug."""
    try:
        client.publish(WAKE_CHANNEL, b"")
    except Exception as exc:
        logger.debug("could not wake the workers: %s", exc)


def redis_broker(
    url: str,
    middleware: list[Middleware] | None = None,
    *,
    heartbeat_timeout: float = defaults.BROKER_HEARTBEAT_TIMEOUT,
    broker_class: type[RedisBroker] | None = None,
    **options: Any,
) -> RedisBroker:
    """A dramatiq Redis broker on :func:`redis_client`; no connection is made here.
    ``broker_class`` (a subclass, e.g. the worker's) gets ``options`` as well."""
    from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker

    broker = (broker_class or RedisBroker)(
        client=redis_client(url),
        middleware=middleware or [],
        heartbeat_timeout=int(heartbeat_timeout * 1000),
        maintenance_chance=MAINTENANCE_SCALE * MAINTENANCE_PERCENT // 100,
        **options,
    )
    return broker


def held_job_ids(broker: RedisBroker) -> set[str]:
    """The job ids Redis holds a message for: ready, delayed (retry backoff) or in flight.

    dramatiq keeps every message's body in ``<namespace>:<queue>.msgs`` until it is acked, and
    the delayed ones in the ``.DQ`` queue's hash. Raises redis errors when Redis is unreachable.
    """
    from dramatiq.common import dq_name

    held: set[str] = set()
    for queue in (QUEUE_NAME, dq_name(QUEUE_NAME)):
        key = f"{broker.namespace}:{queue}.msgs"
        for _, body in broker.client.hscan_iter(key, count=1000):
            try:
                message = json.loads(body)
            except ValueError:
                continue
            if message.get("actor_name") == ACTOR_NAME and message.get("args"):
                held.add(str(message["args"][0]))
    return held


def job_message(job_id: str, *, time_limit_ms: int | None = None) -> Message[Any]:
    """The ``process_job`` message for one job (the API's and the reconciler's sends)."""
    from dramatiq import Message

    options: dict[str, Any] = {}
    if time_limit_ms is not None:
        options["time_limit"] = time_limit_ms
    return Message(
        queue_name=QUEUE_NAME, actor_name=ACTOR_NAME, args=(job_id,), kwargs={}, options=options
    )


class BrokerUnavailable(RuntimeError):
    """No broker is configured, or it did not answer."""


class JobQueue:
    """The API's handle on the broker; connects lazily (importing the app connects to nothing)."""

    def __init__(
        self, url: str | None, heartbeat_timeout: float = defaults.BROKER_HEARTBEAT_TIMEOUT
    ) -> None:
        self.url = url
        # The API's enqueues also run dramatiq's maintenance, which judges which workers are
        # dead by this timeout: it must be the workers' own (BOARDS_BROKER_HEARTBEAT_TIMEOUT).
        self.heartbeat_timeout = heartbeat_timeout
        self._broker: RedisBroker | None = None
        self._lock = threading.Lock()
        self._sending = threading.Lock()  # enqueue_many swaps the broker's script for a while
        self._failed_at: float | None = None  # time.monotonic() of the last failed send

    @property
    def configured(self) -> bool:
        return bool(self.url)

    @property
    def broker(self) -> RedisBroker:
        if not self.url:
            raise BrokerUnavailable("no broker configured: set BOARDS_REDIS_URL")
        if self._broker is None:
            with self._lock:
                if self._broker is None:
                    self._broker = redis_broker(self.url, heartbeat_timeout=self.heartbeat_timeout)
        return self._broker

    def warm_up(self) -> None:
        """Import the broker's libraries (dramatiq, redis-py) and build it, without connecting:
        the first send is then as fast as the others. Without a broker nothing is ever sent."""
        if self.url:
            _ = self.broker

    def ping(self) -> None:
        """Raise if the broker does not answer within the socket timeouts."""
        try:
            self.broker.client.ping()
        except BrokerUnavailable:
            raise
        except Exception as exc:
            raise BrokerUnavailable(f"broker did not answer: {exc}") from exc

    def enqueue(self, job_id: str, *, time_limit_ms: int | None = None) -> None:
        """Send one ``process_job`` message (and wake the workers)."""
        self.enqueue_many([(job_id, time_limit_ms)])

    def enqueue_many(self, jobs: Sequence[tuple[str, int | None]]) -> None:
        """Send one ``process_job`` message per (job id, time limit in ms) and wake the workers,
        all in one round trip. Raises :class:`BrokerUnavailable` if Redis fails (some of the
        messages may have been sent: a worker finds no row for a withdrawn job)."""
        broker = self.broker
        with self._sending:
            failed_at = self._failed_at
            if failed_at is not None and time.monotonic() - failed_at < FAIL_FAST_FOR:
                raise BrokerUnavailable("could not enqueue the job: the broker failed just now")
            try:
                self._send(broker, jobs)
            except Exception as exc:
                self._failed_at = time.monotonic()
                raise BrokerUnavailable(f"could not enqueue the job: {exc}") from exc
            self._failed_at = None

    @staticmethod
    def _send(broker: RedisBroker, jobs: Sequence[tuple[str, int | None]]) -> None:
        # dramatiq's own enqueue (its message ids, maintenance and Lua script), with the
        # script's calls queued on the pipeline rather than sent one round trip each:
        # a busy API thread made every round trip wait for the GIL.
        with broker.client.pipeline(transaction=False) as pipe:
            scripts = broker.scripts
            dispatch = functools.partial(scripts["dispatch"], client=pipe)
            broker.scripts = {**scripts, "dispatch": dispatch}
            try:
                for job_id, limit in jobs:
                    broker.enqueue(job_message(job_id, time_limit_ms=limit))
            finally:
                broker.scripts = scripts
            pipe.publish(WAKE_CHANNEL, b"")
            pipe.execute()

    def close(self) -> None:
        with self._lock:
            if self._broker is not None:
                self._broker.client.close()
            self._broker = None
