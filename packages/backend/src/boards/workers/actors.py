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
from boards.jobs import ACTOR_NAME, QUEUE_NAME, mark_failed, mark_requeued, run_job
from boards.logs import configure_logging, one_line
from boards.queue import redis_broker
from boards.settings import Settings, load_settings_or_exit
from boards.workers.middleware import HandBackOnShutdown, Heartbeat, RecordGiveUp, shutdown_grace

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
    broker = redis_broker(settings.redis_url)
    database = get_database(settings.effective_database_url)
    options = job_options(settings)
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
        Heartbeat(settings.run_dir, ping=broker.client.ping),
        TimeLimit(time_limit=options["time_limit"]),
    ):
        broker.add_middleware(middleware)
    return broker


settings = load_settings_or_exit(require_redis=True)
configure_logging(settings.log_level)
broker = build_broker(settings)
dramatiq.set_broker(broker)


def _hand_back(database: Database, job_id: str) -> None:
    """The worker is stopping mid-job: job back to ``queued``, message back on the queue."""
    try:
        mark_requeued(database, job_id)
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
    """Run one job. Database errors raise, so dramatiq retries with backoff."""
    database = get_database(settings.effective_database_url)
    try:
        run_job(database, job_id)
    except TimeLimitExceeded:
        logger.warning("job %s exceeded its time limit", job_id)
        mark_failed(database, job_id, "time limit exceeded")
    except Shutdown:
        _hand_back(database, job_id)
