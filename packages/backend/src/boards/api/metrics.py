"""The API's Prometheus metrics: HTTP requests, and the jobs as the database sees them.

A registry per app (tests build many apps in one process). The job figures are read from the
database at scrape time, so every API replica reports the same cluster-wide values: aggregate
them with ``max``, not ``sum``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from boards.db import UNAVAILABLE, Database
from boards.jobs import oldest_queued_age, status_counts

logger = logging.getLogger("boards.api")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
AUTH_FAILURE_REASONS = ("missing", "invalid")


class _JobCollector(Collector):
    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> Iterator[Metric]:
        try:
            counts = status_counts(self.database)
            oldest = oldest_queued_age(self.database)
        except UNAVAILABLE:
            logger.debug("metrics: database unavailable, job figures left out", exc_info=True)
            return
        jobs = GaugeMetricFamily(
            "boards_jobs", "Jobs in the database, by status.", labels=["status"]
        )
        for status, count in counts.items():
            jobs.add_metric([status], count)
        yield jobs
        yield GaugeMetricFamily(
            "boards_oldest_queued_job_age_seconds",
            "Seconds the oldest queued job has waited since it was accepted (0: none waiting).",
            value=oldest,
        )


class ApiMetrics:
    def __init__(self, database: Database) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "boards_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "boards_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "boards_auth_failures",
            "Requests refused 401: no bearer token (missing) or not a configured one (invalid).",
            ["reason"],
            registry=self.registry,
        )
        for reason in AUTH_FAILURE_REASONS:
            self.auth_failures.labels(reason)  # both series exist from the start, at 0
        self.registry.register(_JobCollector(database))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
