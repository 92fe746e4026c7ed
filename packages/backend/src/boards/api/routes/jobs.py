"""Submitting jobs and reading them back."""

from __future__ import annotations

import email.message
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from starlette.concurrency import run_in_threadpool

from boards.api.deps import ServicesDep
from boards.api.errors import ApiError, Code
from boards.api.schemas import ErrorOut, JobAccepted, JobIn, JobOut
from boards.jobs import IdempotencyKeyReused, NotAccepted, get_job, submit_job

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])

MAX_IDEMPOTENCY_KEY = 255
#: What idempotency_key() accepts, for the schema (a 400 otherwise, not FastAPI's 422).
IDEMPOTENCY_KEY_PATTERN = f"^[!-~]{{1,{MAX_IDEMPOTENCY_KEY}}}$"


async def require_json(request: Request) -> None:
    """415 unless the body is declared JSON (``application/json`` or ``application/*+json``)."""
    declared = request.headers.get("content-type")
    if declared:
        parsed = email.message.Message()
        parsed["content-type"] = declared
        subtype = parsed.get_content_subtype()
        if parsed.get_content_maintype() == "application" and (
            subtype == "json" or subtype.endswith("+json")
        ):
            return
    raise ApiError(
        415, Code.UNSUPPORTED_MEDIA_TYPE, "send the body as Content-Type: application/json"
    )


async def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            json_schema_extra={
                "pattern": IDEMPOTENCY_KEY_PATTERN,
                "minLength": 1,
                "maxLength": MAX_IDEMPOTENCY_KEY,
            },
        ),
    ] = None,
) -> str | None:
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not all("!" <= ch <= "~" for ch in key):
        raise ApiError(
            400,
            Code.INVALID_IDEMPOTENCY_KEY,
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters",
        )
    return key


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
    dependencies=[Depends(require_json)],
)
async def submit(
    body: JobIn,
    services: ServicesDep,
    request: Request,
    response: Response,
    key: Annotated[str | None, Depends(idempotency_key)],
) -> JobAccepted:
    """Store a job, then send it to the worker. 202: it will run (nothing accepted is lost).
    503: it was not stored and will not run. A replay of an ``Idempotency-Key`` returns the
    job the first request created (``Idempotent-Replayed: true``)."""
    if not services.queue.configured:
        raise ApiError(503, Code.BROKER_NOT_CONFIGURED, "no broker: set BOARDS_REDIS_URL")
    try:
        if key is None:
            # On the event loop: the intake writes on its own thread, many requests at a time.
            submission = await services.intake.submit(body.payload, body.delay_seconds)
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
    except IdempotencyKeyReused:
        # Names neither the key nor the first job: a guessed key must not reveal a job id.
        raise ApiError(
            422,
            Code.IDEMPOTENCY_KEY_REUSED,
            "this Idempotency-Key was first used with another payload or delay",
        ) from None
    except NotAccepted:
        raise ApiError(*BROKER_DOWN, headers={"Retry-After": "5"}) from None
    job = submission.job
    if submission.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    # A path, not an absolute URL: one built from the request would echo its Host header.
    location = request.app.url_path_for("read_job", job_id=job.id)
    response.headers["Location"] = request.scope.get("root_path", "") + str(location)
    return JobAccepted(id=job.id, status=job.status)


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
