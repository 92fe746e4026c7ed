"""Build the FastAPI app for a given :class:`~boards.settings.Settings`."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from boards import version
from boards.api.auth import BearerAuth, declare_bearer
from boards.api.deps import Services
from boards.api.errors import drop_default_validation_errors, install_error_handlers
from boards.api.metrics import ApiMetrics
from boards.api.middleware import BodyLimit, HttpMetrics, RequestContext
from boards.api.routes import health, jobs, metrics
from boards.db import database_for
from boards.jobs import Intake
from boards.migrations import head_revision
from boards.queue import JobQueue
from boards.settings import Settings, bad_tokens_file
from boards.tokens import TokenFile, TokenFileError

logger = logging.getLogger("boards.api")


def warm_up(services: Services) -> None:
    """Import what the job and system-health routes need beyond ``/health`` (the broker's
    libraries, alembic for the head revision) and connect the intake, beside the serving loop,
    so the API answers ``/health`` before that work is done and the first jobs do not pay it."""
    try:
        services.queue.warm_up()
        head_revision(services.settings.alembic_ini)
        if services.queue.configured:
            services.intake.warm_up()
    except Exception:  # the routes report the same failure themselves when they are called
        logger.debug("warm-up failed", exc_info=True)


#: FastAPI's OpenTelemetry hooks, off: with no provider set up they look the environment up on
#: every request to find none (boards exports Prometheus metrics on /metrics).
NO_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}


def opentelemetry_configured() -> bool:
    """An operator who sets OpenTelemetry up (``OTEL_*``) gets FastAPI's hooks back."""
    return any(
        name.startswith("OTEL_") or name == "FASTAPI_OTEL_AUTO_CONFIGURE" for name in os.environ
    )


def create_app(settings: Settings) -> FastAPI:
    """The API for ``settings``; creating it connects to nothing. An unusable token file
    raises :class:`~boards.settings.SettingsError`."""
    tokens = None
    if settings.api_tokens_file is not None:
        try:
            tokens = TokenFile(settings.api_tokens_file)
        except TokenFileError as exc:
            raise bad_tokens_file(settings.api_tokens_file, exc) from None
    database = database_for(settings, "api")
    queue = JobQueue(settings.redis_url, settings.broker_heartbeat_timeout)
    services = Services(
        settings=settings,
        database=database,
        queue=queue,
        intake=Intake(database, queue, settings.job_time_limit),
        metrics=ApiMetrics(database),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        logger.info(
            "boards API %s: database %s, broker %s",
            version(),
            services.database.backend,
            "redis" if services.queue.configured else "not configured",
        )
        if tokens is None:
            logger.warning(
                "BOARDS_API_TOKENS_FILE is not set: every API route is open to anyone who "
                "can reach this port"
            )
        else:
            logger.info("API tokens: %d from %s", len(tokens), tokens.path)
        threading.Thread(target=warm_up, args=(services,), name="warm-up", daemon=True).start()
        yield
        services.intake.close()
        services.queue.close()
        services.database.dispose()

    # redirect_slashes off: a path with a trailing slash is a 404 in the error shape, not a
    # bodiless 307 to a URL built from the request's Host.
    app = FastAPI(
        title="boards",
        version=version(),
        lifespan=lifespan,
        redirect_slashes=False,
        telemetry=None if opentelemetry_configured() else NO_TELEMETRY,
    )
    app.state.services = services
    install_error_handlers(app)
    for router in (health.router, jobs.router, metrics.router):
        app.include_router(router)
    drop_default_validation_errors(app)
    # add_middleware wraps: the last added is the outermost.
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    if tokens is not None:
        # Outside BodyLimit: a request without a token gets 401, whatever its body.
        app.add_middleware(BearerAuth, tokens=tokens, metrics=services.metrics)
        declare_bearer(app)
    app.add_middleware(HttpMetrics, metrics=services.metrics)
    app.add_middleware(RequestContext)
    return app
