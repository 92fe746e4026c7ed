"""Dramatiq middleware for the boards worker: heartbeat file, leases, the reconciler loop,
hand-back on shutdown, outcomes, metrics."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dramatiq import Broker, Worker
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware, ShutdownNotifications, TimeLimitExceeded
from redis import exceptions as redis_exc
from sqlalchemy import exc as sa_exc

from boards.db import Database
from boards.healthcheck import HEARTBEAT_PREFIX, HEARTBEAT_SUFFIX
from boards.jobs import Claim, renew_leases
from boards.logs import one_line
from boards.workers.reconciler import PassReport, Reconciler

logger = logging.getLogger("boards.worker")

#: Seconds between heartbeats. The HEALTHCHECK calls a worker healthy while the newest
#: heartbeat file is younger than ``boards.healthcheck.HEARTBEAT_MAX_AGE`` (20 s).
HEARTBEAT_INTERVAL = 5.0


class Periodic:
    """Call ``action`` every ``interval`` seconds in a daemon thread (a greenlet under gevent)
    until stopped; the first call comes at once. An exception is logged and the loop goes on."""

    def __init__(self, name: str, interval: float, action: Callable[[], object]) -> None:
        self.name = name
        self.interval = interval
        self.action = action
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.action()
            except Exception as exc:
                logger.error("%s: %s", self.name, one_line(exc))
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()


def heartbeat_path(run_dir: Path) -> Path:
    """This process's heartbeat file (the name ``boards.healthcheck`` looks for)."""
    return run_dir / f"{HEARTBEAT_PREFIX}{os.getpid()}{HEARTBEAT_SUFFIX}"


class Heartbeat(Middleware):
    """Every few seconds, ping Redis; only when it answers, touch this process's heartbeat file.

    The file (``<run_dir>/worker-<pid>.heartbeat``) is removed on a clean shutdown.
    """

    def __init__(
        self,
        run_dir: Path,
        ping: Callable[[], object],
        interval: float = HEARTBEAT_INTERVAL,
    ) -> None:
        self.run_dir = run_dir
        self.ping = ping
        self.interval = interval
        self.path: Path | None = None
        self._loop = Periodic("boards-heartbeat", interval, self.beat)
        self.failures = 0

    def beat(self) -> bool:
        """One heartbeat: ping, then touch the file. Returns whether Redis answered."""
        try:
            self.ping()
        except Exception as exc:
            self.failures += 1
            logger.warning(
                "heartbeat: redis did not answer (%d in a row): %s", self.failures, one_line(exc)
            )
            return False
        if self.failures:
            logger.info("heartbeat: redis answers again after %d failures", self.failures)
        self.failures = 0
        return self._write()

    def _write(self, times: tuple[int, int] | None = None) -> bool:
        """Create or touch this process's file; ``times`` sets its (atime, mtime)."""
        path = heartbeat_path(self.run_dir)
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            path.touch()
            os.utime(path, times)
        except OSError as exc:
            logger.error("heartbeat: cannot write %s: %s", path, exc)
            return False
        self.path = path
        return True

    def announce(self) -> None:
        """Create this process's file with a timestamp far in the past.

        The health check then knows it is looking at a worker (and reports it stale) until the
        first successful ping, instead of probing for an API that does not exist.
        """
        self._write((0, 0))

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self.announce()
        self._loop.start()

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self._loop.stop()

    def after_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self._loop.stop()
        path = self.path or heartbeat_path(self.run_dir)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            logger.debug("heartbeat file %s removed", path)


def shutdown_grace(shutdown_timeout: float) -> float:
    """Seconds in-flight jobs get to finish once the worker stops, before being handed back.

    What is left of the shutdown timeout (BOARDS_WORKER_SHUTDOWN_TIMEOUT, also passed to
    dramatiq's --worker-shutdown-timeout) after that -- 1 s, or half of it when it is short --
    lets interrupted jobs re-enqueue before dramatiq stops waiting for its threads.
    """
    return max(shutdown_timeout - 1.0, shutdown_timeout / 2)


class HandBackOnShutdown(ShutdownNotifications):
    """dramatiq's ShutdownNotifications, after a grace period: when the worker stops, in-flight
    messages get ``grace`` seconds to finish, then each one still running gets
    :class:`dramatiq.middleware.Shutdown`; the actor puts its job back to ``queued`` and
    re-enqueues its message, and the original is acked normally.

    Why wait here rather than in dramatiq's ``Worker.stop(timeout)``: that waits for worker
    threads, then requeues only the prefetched messages nobody started. A message still running
    when its wait ends stays in the Redis broker's per-worker ack set, and its job ``running``
    until the lease runs out. That wait is also shorter than it says: ``join_all`` takes the time
    already spent off the remaining timeout again after every thread it joins.
    """

    #: Seconds interrupted messages get to hand their jobs back.
    HAND_BACK_WAIT = 1.0
    POLL = 0.05

    def __init__(
        self,
        grace: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(notify_shutdown=True)
        self.grace = grace
        self.clock = clock
        self.sleep = sleep

    # Every message of this worker is a job that can be handed back: no per-actor opt-in.
    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        self.manager.add_notification()

    def in_flight(self) -> int:
        manager: Any = self.manager  # the gevent and the ctypes managers name their sets apart
        held = getattr(manager, "notification_greenlets", None)
        return len(manager.notifications if held is None else held)

    def interrupt_all(self) -> int:
        """Raise Shutdown in every thread still running a message; returns how many."""
        count = self.in_flight()
        if count:
            logger.warning("worker stopping: interrupting %d message(s) to hand back", count)
            self.manager.shutdown()
        return count

    def _wait_while_in_flight(self, seconds: float) -> None:
        deadline = self.clock() + seconds
        while self.in_flight() and self.clock() < deadline:
            self.sleep(self.POLL)

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        for thread in getattr(worker, "workers", ()):
            thread.stop()  # take no new message (Worker.stop() says it again, harmlessly)
        count = self.in_flight()
        if not count:
            return
        logger.info(
            "worker stopping: %d message(s) in flight get %.1f s to finish", count, self.grace
        )
        self._wait_while_in_flight(self.grace)
        if self.in_flight() and self.interrupt_all():
            self._wait_while_in_flight(self.HAND_BACK_WAIT)


#: What a failed job's ``error`` says about the exception that failed it: a fixed vocabulary a
#: client can act on (docs/operations.md, "Secrets and internals in messages"). The exception
#: itself, which may quote SQL or the driver, goes to the log under the job's id.
DATABASE_UNAVAILABLE = "the database was unavailable"
DATABASE_ERROR = "the database rejected an operation"
BROKER_UNAVAILABLE = "the broker was unavailable"
TIME_LIMIT = "the job ran over its time limit"
WORK_FAILED = "the job's work raised an error"


def failure_reason(exc: BaseException) -> str:
    """The words for ``exc`` in a failed job's ``error`` (never its text)."""
    if isinstance(exc, TimeLimitExceeded):
        return TIME_LIMIT
    if isinstance(
        exc,
        sa_exc.OperationalError
        | sa_exc.InterfaceError
        | sa_exc.TimeoutError
        | sa_exc.DisconnectionError,
    ):
        return DATABASE_UNAVAILABLE
    if isinstance(exc, sa_exc.SQLAlchemyError):
        return DATABASE_ERROR
    if isinstance(exc, redis_exc.ConnectionError | redis_exc.TimeoutError):
        return BROKER_UNAVAILABLE
    return WORK_FAILED


def give_up_error(attempts: int, exc: BaseException) -> str:
    """``the job failed after 3 attempts: the database was unavailable``."""
    plural = "" if attempts == 1 else "s"
    return f"the job failed after {attempts} attempt{plural}: {failure_reason(exc)}"


class RecordGiveUp(Middleware):
    """When dramatiq gives up on a job message (retries exhausted), mark the job failed.

    The job's ``error`` names the kind of failure (:func:`failure_reason`); the exception and
    its traceback go to the log with the job's id. Must be listed *before* ``Retries`` so its
    ``after_process_message`` runs after it.
    """

    def __init__(self, actor_name: str, on_give_up: Callable[[str, str], object]) -> None:
        self.actor_name = actor_name
        self.on_give_up = on_give_up

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None or not message.failed or message.actor_name != self.actor_name:
            return
        if not message.args:
            return
        job_id = str(message.args[0])
        # Retries counts every failed attempt before this hook runs: the first one included.
        attempts = int(message.options.get("retries", 0)) or 1
        error = give_up_error(attempts, exception)
        logger.error(
            "job %s failed after %d attempt(s) (%s): %s",
            job_id,
            attempts,
            failure_reason(exception),
            one_line(exception),
            exc_info=exception,
        )
        try:
            self.on_give_up(job_id, error)
        except Exception as exc:
            logger.error("could not record the failure of job %s: %s", job_id, one_line(exc))


class LeaseKeeper(Middleware):
    """The claims this process is running; renews their leases every third of a lease.

    A worker that dies stops renewing, its jobs' leases run out, and the reconciler re-sends them.
    """

    def __init__(self, database: Database, lease: float) -> None:
        self.database = database
        self.lease = lease
        self._lock = threading.Lock()
        self._claims: dict[tuple[str, int], Claim] = {}
        self._loop = Periodic("boards-leases", lease / 3, self.renew)

    def add(self, claim: Claim) -> None:
        with self._lock:
            self._claims[(claim.job_id, claim.attempt)] = claim

    def discard(self, claim: Claim) -> None:
        with self._lock:
            self._claims.pop((claim.job_id, claim.attempt), None)

    def held(self) -> list[Claim]:
        with self._lock:
            return list(self._claims.values())

    def renew(self) -> int:
        return renew_leases(self.database, self.held(), self.lease)

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self._loop.start()

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self._loop.stop()


class WorkerMetrics:
    """boards' own worker counters. dramatiq's Prometheus middleware puts prometheus_client in
    multiprocess mode at process boot and serves every process's metrics on one port; the
    counters are therefore created on first use, after that boot, never at import."""

    #: Counter names (exported with ``_total``).
    RUNS = "boards_reconciler_runs"
    REDELIVERIES = "boards_job_redeliveries"
    PRUNED = "boards_jobs_pruned"

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._runs: Any = None
        self._redeliveries: Any = None
        self._pruned: Any = None

    def _ensure(self) -> bool:
        if not self.enabled:
            return False
        if self._runs is None:
            import prometheus_client as prom

            registry = prom.CollectorRegistry()  # the exposition server reads the files
            self._runs = prom.Counter(
                self.RUNS,
                "Reconciler passes, by outcome (ok, skipped, broker_down, error).",
                ["outcome"],
                registry=registry,
            )
            self._redeliveries = prom.Counter(
                self.REDELIVERIES,
                "Jobs the reconciler re-sent, by reason (lease_expired, lost), or gave up on.",
                ["reason"],
                registry=registry,
            )
            self._pruned = prom.Counter(
                self.PRUNED,
                "Finished jobs deleted because they were older than BOARDS_JOB_RETENTION.",
                registry=registry,
            )
        return True

    def record(self, report: PassReport) -> None:
        if not self._ensure():
            return
        self._runs.labels(report.outcome).inc()
        for reason, jobs in (
            ("lease_expired", report.lease_expired),
            ("lost", report.lost),
            ("gave_up", report.gave_up),
        ):
            if jobs:
                self._redeliveries.labels(reason).inc(len(jobs))
        if report.pruned:
            self._pruned.inc(report.pruned)

    def record_error(self) -> None:
        if self._ensure():
            self._runs.labels("error").inc()


class ReconcileLoop(Middleware):
    """Runs :class:`~boards.workers.reconciler.Reconciler` passes every ``interval`` seconds."""

    def __init__(self, reconciler: Reconciler, interval: float, metrics: WorkerMetrics) -> None:
        self.reconciler = reconciler
        self.metrics = metrics
        self._loop = Periodic("boards-reconciler", interval, self.run_once)

    def run_once(self) -> PassReport | None:
        try:
            report = self.reconciler.run_once()
        except Exception as exc:
            logger.warning("reconciler pass failed, next pass retries: %s", one_line(exc))
            self.metrics.record_error()
            return None
        self.metrics.record(report)
        return report

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        self._loop.start()

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self._loop.stop()
