"""Submitting jobs and reading them back."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from boards.api.deps import Services, ServicesDep
from boards.api.errors import ApiError, Code
from boards.api.schemas import ErrorOut, JobAccepted, JobIn, JobOut
from boards.jobs import IdempotencyKeyReused, NotAccepted, get_job, submit_job

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])

MAX_IDEMPOTENCY_KEY = 255
#: What idempotency_key() accepts, for the schema (a 400 otherwise, not FastAPI's 422).
IDEMPOTENCY_KEY_PATTERN = f"^[!-~]{{1,{MAX_IDEMPOTENCY_KEY}}}$"


def _is_json(content_type: str) -> bool:
    """``application/json`` or ``application/*+json``, parameters and case aside."""
    media = content_type.partition(";")[0].strip().lower()
    kind, _, subtype = media.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


async def job_request(request: Request) -> str | None:
    """Checks the headers before the body is read: 415 unless the body is declared JSON, 400
    for a malformed ``Idempotency-Key``; returns the key. One dependency, reading the headers
    itself: FastAPI's per-parameter header models cost a POST more than its database write."""
    if not _is_json(request.headers.get("content-type", "")):
        raise ApiError(
            415, Code.UNSUPPORTED_MEDIA_TYPE, "send the body as Content-Type: application/json"
        )
    key = request.headers.get("idempotency-key")
    if key is not None and (
        not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not all("!" <= ch <= "~" for ch in key)
    ):
        raise ApiError(
            400,
            Code.INVALID_IDEMPOTENCY_KEY,
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters",
        )
    return key


#: The header, for the schema (job_request reads it).
IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {
        "type": "string",
        "pattern": IDEMPOTENCY_KEY_PATTERN,
        "minLength": 1,
        "maxLength": MAX_IDEMPOTENCY_KEY,
        "title": "Idempotency-Key",
    },
}


BROKER_DOWN = (503, Code.BROKER_UNAVAILABLE, "the job queue is unavailable; nothing was stored")
ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (400, 413, 415, 422, 503)
}


ACCEPTED_HEADERS = {
    "Location": {"description": "the job's path", "schema": {"type": "string"}},
    "Idempotent-Replayed": {
        "description": "`true` when an earlier request with this key created the job",
        "schema": {"type": "string", "enum": ["true"]},
    },
}


@router.post(
    "",
    status_code=202,
    response_model=JobAccepted,
    responses={202: {"headers": ACCEPTED_HEADERS}, **ERRORS},
    openapi_extra={"parameters": [IDEMPOTENCY_KEY_PARAMETER]},
)
async def submit(
    body: JobIn,
    request: Request,
    response: Response,
    key: Annotated[str | None, Depends(job_request)],
) -> JobAccepted:
    """Store a job, then send it to the worker. 202: it will run (nothing accepted is lost).
    503: it was not stored and will not run. A replay of an ``Idempotency-Key`` returns the
    job the first request created (``Idempotent-Replayed: true``)."""
    # Read here, not as a dependency: each dependency FastAPI solves costs this route CPU.
    services: Services = request.app.state.services
    if not services.queue.configured:
        raise ApiError(503, Code.BROKER_NOT_CONFIGURED, "no broker: set BOARDS_REDIS_URL")
    try:
        if key is None:
            # On the event loop: the intake writes on its own thread, many requests at a time.
            job_id, status = await services.intake.submit(body.payload, body.delay_seconds)
        else:
            submission = await run_in_threadpool(
                submit_job,
                services.database,
                services.queue,
                body.payload,
                body.delay_seconds,
                idempotency_key=key,
                job_time_limit=services.settings.job_time_limit,
            )
            job_id, status = submission.job.id, submission.job.status
            if submission.replayed:
                response.headers["Idempotent-Replayed"] = "true"
    except IdempotencyKeyReused:
        # Names neither the key nor the first job: a guessed key must not reveal a job id.
        raise ApiError(
            422,
            Code.IDEMPOTENCY_KEY_REUSED,
            "this Idempotency-Key was first used with another payload or delay",
        ) from None
    except NotAccepted:
        raise ApiError(*BROKER_DOWN, headers={"Retry-After": "5"}) from None
    # A path, not an absolute URL: one built from the request would echo its Host header.
    response.headers["Location"] = f"{request.scope.get('root_path', '')}{router.prefix}/{job_id}"
    return JobAccepted(id=job_id, status=status)


@router.get(
    "/{job_id}",
    response_model=JobOut,
    responses={404: {"model": ErrorOut}, 503: {"model": ErrorOut}},
    name="read_job",
)
def read_job(job_id: str, services: ServicesDep) -> JobOut:
    """A job's status, result and error."""
    job = get_job(services.database, job_id) if _is_job_id(job_id) else None
    if job is None:
        raise ApiError(404, Code.NOT_FOUND, "no such job")
    return JobOut(
        id=job.id,
        status=job.status,
        result=job.result,
        error=job.error,
        attempts=job.attempts,
        created_at=job.created_at,
        updated_at=job.updated_at,
    )


def _is_job_id(value: str) -> bool:
    """Job ids are canonical UUIDs; anything else is not looked up (nor sent to the database)."""
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False
