"""The worker's broker and its middleware, built from the settings (nothing runs at import)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage, Middleware, Retries, TimeLimit

from boards.db import Database, database_for
from boards.jobs import fail_job
from boards.queue import ACTOR_NAME, redis_broker
from boards.settings import Settings
from boards.workers.middleware import (
    HandBackOnShutdown,
    Heartbeat,
    LeaseKeeper,
    ReconcileLoop,
    RecordGiveUp,
    WorkerMetrics,
    shutdown_grace,
)
from boards.workers.reconciler import Reconciler
from boards.workers.wakeup import WakingRedisBroker, idle_wait


def job_options(settings: Settings) -> dict[str, Any]:
    """Retry and time-limit options of the actor, in dramatiq's units (milliseconds)."""
    return {
        "max_retries": settings.job_max_retries,
        "min_backoff": int(settings.job_retry_min_backoff * 1000),
        "max_backoff": int(settings.job_retry_max_backoff * 1000),
        "time_limit": int(settings.job_time_limit * 1000),
    }


def worker_middleware(
    settings: Settings,
    database: Database,
    *,
    ping: Callable[[], object],
    reconcile: ReconcileLoop | None,
) -> list[Middleware]:
    """The worker's middleware, in the order they must run.

    after_* hooks run in reverse: TimeLimit last, so its timer is the first thing cleared after
    an actor returns; RecordGiveUp before Retries, so it sees ``message.failed``.
    """
    options = job_options(settings)
    stack: list[Middleware] = [
        RecordGiveUp(ACTOR_NAME, lambda job_id, error: fail_job(database, job_id, error)),
        Retries(
            max_retries=options["max_retries"],
            min_backoff=options["min_backoff"],
            max_backoff=options["max_backoff"],
        ),
        CurrentMessage(),
        HandBackOnShutdown(grace=shutdown_grace(settings.worker_shutdown_timeout)),
        LeaseKeeper(database, settings.job_lease),
        Heartbeat(settings.run_dir, ping=ping),
    ]
    if reconcile is not None:
        stack.append(reconcile)
    stack.append(TimeLimit(time_limit=options["time_limit"]))
    return stack


def build_broker(settings: Settings) -> dramatiq.Broker:
    """The Redis broker with every middleware the worker role runs."""
    assert settings.redis_url, "the worker needs BOARDS_REDIS_URL"
    broker = redis_broker(
        settings.redis_url,
        heartbeat_timeout=settings.broker_heartbeat_timeout,
        broker_class=WakingRedisBroker,
        idle_wait=idle_wait(settings.broker_heartbeat_timeout),
    )
    database = database_for(settings, "worker")
    metrics = WorkerMetrics(enabled=settings.worker_metrics_port > 0)
    reconciler = Reconciler(
        database=database,
        broker=broker,
        max_deliveries=settings.job_max_deliveries,
        queued_after=settings.reconcile_queued_after,
        job_time_limit=settings.job_time_limit,
        retention=settings.job_retention,
    )
    if metrics.enabled:
        # Imported here: it creates its multiprocess directory on import.
        from dramatiq.middleware.prometheus import Prometheus

        broker.add_middleware(Prometheus())
    loop = ReconcileLoop(reconciler, settings.reconcile_interval, metrics)
    for middleware in worker_middleware(
        settings, database, ping=broker.client.ping, reconcile=loop
    ):
        broker.add_middleware(middleware)
    return broker


def lease_keeper(broker: dramatiq.Broker) -> LeaseKeeper:
    return next(m for m in broker.middleware if isinstance(m, LeaseKeeper))
