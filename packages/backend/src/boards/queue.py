"""The Redis side shared by the API (enqueue, probe) and the worker (broker construction)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware
from redis.backoff import NoBackoff
from redis.retry import Retry

from boards.jobs import ACTOR_NAME, QUEUE_NAME

logger = logging.getLogger("boards.queue")

#: Seconds to wait for Redis to accept a connection / answer a command.
REDIS_CONNECT_TIMEOUT = 2.0
REDIS_SOCKET_TIMEOUT = 5.0


def redis_client(url: str) -> redis.Redis:
    """A client that fails fast: short timeouts and no hidden retries (callers decide)."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
        socket_timeout=REDIS_SOCKET_TIMEOUT,
        socket_keepalive=True,
        health_check_interval=15,
        retry=Retry(NoBackoff(), 0),
    )


def redis_broker(url: str, middleware: list[Middleware] | None = None) -> RedisBroker:
    """A dramatiq Redis broker on :func:`redis_client`; no connection is made here."""
    broker = RedisBroker(client=redis_client(url), middleware=middleware or [])  # type: ignore[no-untyped-call]
    return broker


class BrokerUnavailable(RuntimeError):
    """No broker is configured, or it did not answer."""


class JobQueue:
    """The API's handle on the broker; connects lazily (importing the app connects to nothing)."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self._broker: RedisBroker | None = None
        self._lock = threading.Lock()

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
                    self._broker = redis_broker(self.url)
        return self._broker

    def ping(self) -> None:
        """Raise if the broker does not answer within the socket timeouts."""
        try:
            self.broker.client.ping()
        except BrokerUnavailable:
            raise
        except Exception as exc:
            raise BrokerUnavailable(f"broker did not answer: {exc}") from exc

    def enqueue(self, job_id: str, *, time_limit_ms: int | None = None) -> str:
        """Send one ``process_job`` message; returns the dramatiq message id."""
        options: dict[str, Any] = {}
        if time_limit_ms is not None:
            options["time_limit"] = time_limit_ms
        message: Message[Any] = Message(
            queue_name=QUEUE_NAME,
            actor_name=ACTOR_NAME,
            args=(job_id,),
            kwargs={},
            options=options,
        )
        try:
            sent = self.broker.enqueue(message)
        except BrokerUnavailable:
            raise
        except Exception as exc:
            raise BrokerUnavailable(f"could not enqueue the job: {exc}") from exc
        return sent.message_id

    def close(self) -> None:
        with self._lock:
            if self._broker is not None:
                self._broker.client.close()
            self._broker = None
