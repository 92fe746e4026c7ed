"""What the routes are handed: the app's services, as a typed FastAPI dependency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from boards.api.metrics import ApiMetrics
from boards.db import Database
from boards.jobs import Intake
from boards.queue import JobQueue
from boards.settings import Settings


@dataclass
class Services:
    settings: Settings
    database: Database
    queue: JobQueue
    intake: Intake
    metrics: ApiMetrics


# The dependencies here and the routes' own small ones are `async def` although they never
# await: FastAPI runs a plain `def` dependency on the thread pool, one thread hop each per request.
async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]
