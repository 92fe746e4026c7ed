"""The worker: ``dramatiq-gevent boards.workers.actors:broker --processes N --threads M``.

Importing this module reads the settings (BOARDS_REDIS_URL is required here: without it, one
line on stderr and exit code 2), sets up logging and builds the Redis broker. It connects to
nothing at import: a worker whose Redis is unreachable keeps running and retries.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage, Retries, Shutdown, TimeLimit, TimeLimitExceeded

from boards.db import Database, get_database
from boards.jobs import (
    ACTOR_NAME,
    QUEUE_NAME,
    Claim,
    finish_job,
    hand_back,
    mark_failed,
    run_job,
)
from boards.logs import configure_logging, one_line
from boards.models import JobStatus
from boards.queue import redis_broker
from boards.settings import Settings, load_settings_or_exit
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

logger = logging.getLogger("boards.worker")


def job_options(settings: Settings) -> dict[str, Any]:
    """Retry and time-limit options of the actor, in dramatiq's units (milliseconds)."""
    return {
        "max_retries": settings.job_max_retries,
        "min_backoff": int(settings.job_retry_min_backoff * 1000),
        "max_backoff": int(settings.job_retry_max_backoff * 1000),
        "time_limit": int(settings.job_time_limit * 1000),
    }


def build_broker(settings: Settings) -> dramatiq.Broker:
    assert settings.redis_url, "the worker needs BOARDS_REDIS_URL"
    broker = redis_broker(settings.redis_url, heartbeat_timeout=settings.broker_heartbeat_timeout)
    database = get_database(settings.effective_database_url)
    options = job_options(settings)
    metrics = WorkerMetrics(enabled=settings.worker_metrics_port > 0)
    reconciler = Reconciler(
        database=database,
        broker=broker,
        max_deliveries=settings.job_max_deliveries,
        queued_after=settings.reconcile_queued_after,
        job_time_limit=settings.job_time_limit,
    )
    if metrics.enabled:
        # Imported here: it creates its multiprocess directory on import.
        from dramatiq.middleware.prometheus import Prometheus

        broker.add_middleware(Prometheus())
    # Order matters: after_* hooks run in reverse. TimeLimit last so its timer is the first
    # thing cleared after an actor returns; RecordGiveUp before Retries so it sees message.failed.
    for middleware in (
        RecordGiveUp(ACTOR_NAME, lambda job_id, error: mark_failed(database, job_id, error)),
        Retries(
            max_retries=options["max_retries"],
            min_backoff=options["min_backoff"],
            max_backoff=options["max_backoff"],
        ),
        CurrentMessage(),
        HandBackOnShutdown(grace=shutdown_grace(settings.worker_shutdown_timeout)),
        LeaseKeeper(database, settings.job_lease),
        Heartbeat(settings.run_dir, ping=broker.client.ping),
        ReconcileLoop(reconciler, settings.reconcile_interval, metrics),
        TimeLimit(time_limit=options["time_limit"]),
    ):
        broker.add_middleware(middleware)
    return broker


settings = load_settings_or_exit(require_redis=True)
configure_logging(settings.log_level)
broker = build_broker(settings)
dramatiq.set_broker(broker)
leases = next(m for m in broker.middleware if isinstance(m, LeaseKeeper))


def _hand_back(database: Database, job_id: str, claim: Claim | None) -> None:
    """The worker is stopping mid-job: job back to ``queued``, message back on the queue."""
    if claim is not None:
        try:
            hand_back(database, claim)
        except Exception as exc:
            logger.error("job %s: could not mark it queued again: %s", job_id, one_line(exc))
    message = CurrentMessage.get_current_message()
    if message is None:  # pragma: no cover - CurrentMessage is always installed
        raise Shutdown
    broker.enqueue(message.copy())
    logger.info("job %s handed back to the queue (worker stopping)", job_id)


@dramatiq.actor(
    actor_name=ACTOR_NAME,
    queue_name=QUEUE_NAME,
    broker=broker,
    **job_options(settings),
)
def process_job(job_id: str) -> None:
    """Run one delivery of a job. Database errors raise, so dramatiq retries with backoff."""
    database = get_database(settings.effective_database_url)
    claims: list[Claim] = []
    try:
        run_job(database, job_id, lease=settings.job_lease, leases=leases, on_claim=claims.append)
    except TimeLimitExceeded:
        logger.warning("job %s exceeded its time limit", job_id)
        if claims:
            finish_job(database, claims[0], JobStatus.FAILED, error="time limit exceeded")
    except Shutdown:
        _hand_back(database, job_id, claims[0] if claims else None)
