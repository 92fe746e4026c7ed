"""Build the FastAPI app for a given :class:`~boards.settings.Settings`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from boards import version
from boards.db import Database, get_database
from boards.jobs import create_job, get_job, mark_failed
from boards.logs import one_line
from boards.migrations import current_revision, head_revision
from boards.models import Job, JobStatus
from boards.queue import BrokerUnavailable, JobQueue
from boards.settings import Settings

logger = logging.getLogger("boards.api")

#: Seconds a health probe's SQL statement may take on PostgreSQL.
PROBE_STATEMENT_TIMEOUT_MS = 3000


# -- schemas -------------------------------------------------------------------------------------


class JobIn(BaseModel):
    payload: str = Field(max_length=1_000_000, description="Text to process")
    delay_seconds: float = Field(
        default=0.0, ge=0, le=30, description="Seconds the worker waits before the work"
    )


class JobAccepted(BaseModel):
    id: str
    status: str


class JobOut(BaseModel):
    id: str
    status: str
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    updated_at: datetime


class ComponentStatus(BaseModel):
    status: Literal["ok", "down", "not_configured"]
    detail: str | None = None


class MigrationStatus(BaseModel):
    current: str | None
    head: str | None
    status: Literal["ok", "pending", "unknown"]
    detail: str | None = None


class SystemHealth(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    database: ComponentStatus
    broker: ComponentStatus
    migrations: MigrationStatus


# -- probes --------------------------------------------------------------------------------------


@dataclass
class Services:
    settings: Settings
    database: Database
    queue: JobQueue


def _probe_database(services: Services) -> tuple[ComponentStatus, MigrationStatus]:
    """One short connection: reachability and the schema revision."""
    head: str | None = None
    head_error: str | None = None
    try:
        head = head_revision(services.settings.alembic_ini)
    except Exception as exc:
        head_error = one_line(exc)
    try:
        with services.database.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"SET LOCAL statement_timeout = {PROBE_STATEMENT_TIMEOUT_MS}"))
            conn.execute(text("SELECT 1"))
            current = current_revision(conn)
            conn.rollback()
    except Exception as exc:
        return (
            ComponentStatus(status="down", detail=one_line(exc)),
            MigrationStatus(current=None, head=head, status="unknown", detail="database down"),
        )
    database = ComponentStatus(status="ok", detail=services.database.backend)
    if head_error is not None:
        return database, MigrationStatus(
            current=current, head=None, status="unknown", detail=head_error
        )
    state: Literal["ok", "pending"] = "ok" if current == head else "pending"
    return database, MigrationStatus(current=current, head=head, status=state)


def _probe_broker(services: Services) -> ComponentStatus:
    if not services.queue.configured:
        return ComponentStatus(status="not_configured", detail="BOARDS_REDIS_URL is not set")
    try:
        services.queue.ping()
    except BrokerUnavailable as exc:
        return ComponentStatus(status="down", detail=str(exc))
    return ComponentStatus(status="ok", detail="redis")


def system_health(services: Services) -> SystemHealth:
    database, migrations = _probe_database(services)
    broker = _probe_broker(services)
    healthy = database.status == "ok" and migrations.status == "ok" and broker.status != "down"
    return SystemHealth(
        status="ok" if healthy else "degraded",
        version=version(),
        database=database,
        broker=broker,
        migrations=migrations,
    )


def _error(status_code: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse(status_code=status_code, content={"error": error, "detail": detail})


# -- app -----------------------------------------------------------------------------------------


def create_app(settings: Settings) -> FastAPI:
    """The API for ``settings``; creating it connects to nothing."""
    services = Services(
        settings=settings,
        database=get_database(settings.effective_database_url),
        queue=JobQueue(settings.redis_url),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        logger.info(
            "boards API %s: database %s, broker %s",
            version(),
            services.database.backend,
            "redis" if services.queue.configured else "not configured",
        )
        yield
        services.queue.close()
        services.database.dispose()

    app = FastAPI(title="boards", version=version(), lifespan=lifespan)
    app.state.services = services

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        """Liveness: the process answers. Touches neither the database nor the broker."""
        return {"status": "ok"}

    @app.get("/health/ready", tags=["health"])
    def ready() -> JSONResponse:
        """Readiness: database answers, schema at head, broker (when configured) answers."""
        report = system_health(services)
        reasons: list[str] = []
        if report.database.status != "ok":
            reasons.append(f"database down: {report.database.detail}")
        elif report.migrations.status != "ok":
            reasons.append(
                f"schema not at head (current {report.migrations.current}, "
                f"head {report.migrations.head})"
                + (f": {report.migrations.detail}" if report.migrations.detail else "")
            )
        if report.broker.status == "down":
            reasons.append(f"broker down: {report.broker.detail}")
        body = {"status": "ready" if not reasons else "not_ready", "reasons": reasons}
        return JSONResponse(status_code=503 if reasons else 200, content=body)

    @app.get("/api/v1/system/health", tags=["health"])
    def api_system_health() -> SystemHealth:
        """Status of the database, broker and migrations, and the version (always 200)."""
        return system_health(services)

    @app.post("/api/v1/jobs", status_code=202, response_model=JobAccepted, tags=["jobs"])
    def submit_job(body: JobIn, request: Request, response: Response) -> Any:
        """Store a job and queue it for the worker."""
        if not services.queue.configured:
            return _error(503, "broker_not_configured", "no broker: set BOARDS_REDIS_URL")
        try:
            job = create_job(services.database, body.payload, body.delay_seconds)
        except SQLAlchemyError as exc:
            logger.error("could not store a job: %s", one_line(exc))
            return _error(503, "database_unavailable", one_line(exc))
        time_limit_ms = int((settings.job_time_limit + job.delay_seconds) * 1000)
        try:
            services.queue.enqueue(job.id, time_limit_ms=time_limit_ms)
        except BrokerUnavailable as exc:
            logger.error("could not enqueue job %s: %s", job.id, exc)
            try:
                mark_failed(services.database, job.id, f"not enqueued: {exc}")
            except SQLAlchemyError:
                logger.exception("could not mark job %s failed", job.id)
            return _error(503, "broker_unavailable", str(exc))
        response.headers["Location"] = str(request.url_for("read_job", job_id=job.id))
        return JobAccepted(id=job.id, status=JobStatus.QUEUED)

    @app.get("/api/v1/jobs/{job_id}", response_model=JobOut, tags=["jobs"], name="read_job")
    def read_job(job_id: str) -> Any:
        """A job's status, result and error."""
        try:
            job: Job | None = get_job(services.database, job_id)
        except SQLAlchemyError as exc:
            return _error(503, "database_unavailable", one_line(exc))
        if job is None:
            return _error(404, "not_found", f"no job with id {job_id!r}")
        return JobOut(
            id=job.id,
            status=job.status,
            result=job.result,
            error=job.error,
            created_at=job.created_at,
            updated_at=job.updated_at,
        )

    return app
