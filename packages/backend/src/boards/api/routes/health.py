"""Liveness, readiness and the system status."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from boards.api.deps import ServicesDep
from boards.api.probes import readiness_reasons, system_health
from boards.api.schemas import Readiness, SystemHealth

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers. Touches neither the database nor the broker.

    On the event loop, not the thread pool: a pool busy with slow database calls must not make
    an orchestrator's liveness probe time out and restart a working API."""
    return {"status": "ok"}


@router.get("/health/ready", responses={200: {"model": Readiness}, 503: {"model": Readiness}})
def ready(services: ServicesDep) -> JSONResponse:
    """Readiness: database answers, schema at head, broker (when configured) answers."""
    reasons = readiness_reasons(system_health(services))
    body = {"status": "ready" if not reasons else "not_ready", "reasons": reasons}
    return JSONResponse(status_code=503 if reasons else 200, content=body)


@router.get("/api/v1/system/health")
def api_system_health(services: ServicesDep) -> SystemHealth:
    """Status of the database, broker and migrations, and the version (always 200)."""
    return system_health(services)
