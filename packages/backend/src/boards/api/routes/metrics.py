"""Prometheus metrics of this API process (and the jobs in the database)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from boards.api.deps import ServicesDep
from boards.api.metrics import CONTENT_TYPE

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response)
def metrics(services: ServicesDep) -> Response:
    return Response(services.metrics.render(), media_type=CONTENT_TYPE)
