"""The worker: ``dramatiq-gevent boards.workers.actors:broker --processes N --threads M``.

Importing this module reads the settings (BOARDS_REDIS_URL is required here: without it, one
line on stderr and exit code 2), sets up logging and builds the Redis broker. It connects to
nothing at import: a worker whose Redis is unreachable keeps running and retries.
"""

from __future__ import annotations

import dramatiq
from dramatiq.middleware import CurrentMessage, Shutdown

from boards.db import database_for
from boards.jobs import Runner
from boards.logs import configure_logging
from boards.queue import ACTOR_NAME, QUEUE_NAME
from boards.settings import load_settings_or_exit
from boards.workers.broker import build_broker, job_options, lease_keeper
from boards.workers.process import process_delivery

settings = load_settings_or_exit(require_redis=True)
configure_logging(settings.log_level)
broker = build_broker(settings)
dramatiq.set_broker(broker)
leases = lease_keeper(broker)
runner = Runner(database_for(settings, "worker"), settings.job_lease)


def _resend_current() -> None:
    message = CurrentMessage.get_current_message()
    if message is None:  # pragma: no cover - CurrentMessage is always installed
        raise Shutdown
    broker.enqueue(message.copy())


@dramatiq.actor(
    actor_name=ACTOR_NAME,
    queue_name=QUEUE_NAME,
    broker=broker,
    **job_options(settings),
)
def process_job(job_id: str) -> None:
    """Run one delivery of a job (:func:`boards.workers.process.process_delivery`)."""
    process_delivery(runner, job_id, leases=leases, resend=_resend_current)
