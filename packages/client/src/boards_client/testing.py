"""An in-memory fake of the boards API's HTTP contract, for tests of code that uses the client
where running the real service is not an option::

    from boards_client import BoardsClient
    from boards_client.testing import FakeBoardsApi

    api = FakeBoardsApi()
    with BoardsClient("http://boards.test", transport=api.transport()) as client:
        job = client.wait_for_job(client.create_job("hi").id, interval=0.001)

It fakes the HTTP contract of docs/operations.md, not the service. Jobs need no worker: each GET
of a job advances it one step, ``running`` then (after ``steps_to_finish`` GETs) ``succeeded``
with the backend's ``{characters, words, sha256}``, or ``failed`` when the payload starts with
``fail:`` (error: the rest, stripped). Bodies are checked as the API checks them (``payload`` a
string without NUL, ``delay_seconds`` from 0 to 30, ``Idempotency-Key`` 1 to 255 visible ASCII
characters, replayed or refused as the API does). Every error has the API's shape
``{"error", "detail", "request_id"}`` and every answer an ``X-Request-ID``.
``ready = False`` makes the readiness route answer 503 and the system health ``degraded``;
``broker_up = False`` makes ``POST /api/v1/jobs`` answer ``503 broker_unavailable`` and store
nothing. ``tokens={"..."}`` makes every route but ``/health`` and ``/health/ready`` answer
``401 unauthorized`` (with ``WWW-Authenticate``) unless ``Authorization: Bearer`` carries one of
them, as the API does with ``BOARDS_API_TOKENS_FILE``. The client's tests check this fake
against the real app (tests/test_fake.py, tests/test_auth.py).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

import httpx

JOBS_PATH = "/api/v1/jobs"
JOB_PATH = re.compile(r"^/api/v1/jobs/(?P<id>[^/]+)$")
#: The methods each route answers; another method is a 405.
ROUTES = {
    "/health": "GET",
    "/health/ready": "GET",
    "/api/v1/system/health": "GET",
    JOBS_PATH: "POST",
}
FAIL_PREFIX = "fail:"
MAX_DELAY_SECONDS = 30
MAX_PAYLOAD_CHARS = 1_000_000
MAX_IDEMPOTENCY_KEY = 255
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
OPEN_PATHS = frozenset({"/health", "/health/ready"})
REALM = 'Bearer realm="boards"'


class _Refused(Exception):
    """An answer in the API's error shape."""

    def __init__(
        self,
        status: int,
        error: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail, self.extra = status, error, detail, extra
        self.headers = headers or {}


@dataclass
class FakeBoardsApi:
    ready: bool = True
    broker_up: bool = True
    steps_to_finish: int = 2  # GETs before a job finishes
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    tokens: frozenset[str] = frozenset()  # empty: no token needed

    def transport(self) -> httpx.MockTransport:
        """An httpx transport answering from this fake."""
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request the way the API does, with its request id."""
        self.requests.append(request)
        offered = request.headers.get("x-request-id", "")
        request_id = offered if SANE_REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
        try:
            response = self._route(request)
        except _Refused as refused:
            body = {"error": refused.error, "detail": refused.detail, "request_id": request_id}
            headers = {"Retry-After": "5"} if refused.status == 503 else refused.headers
            response = httpx.Response(
                refused.status, json={**body, **refused.extra}, headers=headers
            )
        response.headers["X-Request-ID"] = request_id
        return response

    def _route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if self.tokens and path not in OPEN_PATHS:
            self._authorize(request)
        match = JOB_PATH.match(path)
        allowed = ROUTES.get(path) or ("GET" if match else None)
        if allowed is None:
            raise _Refused(404, "not_found", "Not Found")
        if request.method != allowed:
            raise _Refused(405, "method_not_allowed", "Method Not Allowed")
        if path == "/health":
            return httpx.Response(200, json={"status": "ok"})
        if path == "/health/ready":
            if self.ready:
                return httpx.Response(200, json={"status": "ready", "reasons": []})
            reasons = ["database down: database did not answer"]
            return httpx.Response(503, json={"status": "not_ready", "reasons": reasons})
        if path == "/api/v1/system/health":
            return httpx.Response(200, json=self._system_health())
        if match:
            return self._get(match["id"])
        return self._create(request)

    def _authorize(self, request: httpx.Request) -> None:
        scheme, _, credentials = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer":
            raise _Refused(
                401,
                "unauthorized",
                "send Authorization: Bearer <token>",
                headers={"WWW-Authenticate": REALM},
            )
        if credentials.strip() not in self.tokens:
            raise _Refused(
                401,
                "unauthorized",
                "the bearer token is not valid",
                headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
            )

    def _system_health(self) -> dict[str, Any]:
        database = (
            {"status": "ok", "detail": "fake"}
            if self.ready
            else {"status": "down", "detail": "database did not answer"}
        )
        migrations = (
            {"current": "head", "head": "head", "status": "ok", "detail": None}
            if self.ready
            else {"current": None, "head": "head", "status": "unknown", "detail": "database down"}
        )
        return {
            "status": "ok" if self.ready else "degraded",
            "version": "0.1.0",
            "database": database,
            "broker": {"status": "ok", "detail": "redis"},
            "migrations": migrations,
        }

    def _create(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise _Refused(
                415, "unsupported_media_type", "send the body as Content-Type: application/json"
            )
        try:
            text = request.content.decode("utf-8")
        except UnicodeDecodeError:
            raise _Refused(400, "invalid_json", "the body could not be read as JSON") from None
        try:
            body = json.loads(text)
        except ValueError:
            raise _Refused(400, "invalid_json", "the body is not valid JSON") from None
        self.bodies.append(body)
        key = _idempotency_key(request)
        payload, delay = _validated(body)
        fingerprint = (payload, delay)
        for job in self.jobs.values():
            if key is not None and job["_key"] == key:
                if job["_fingerprint"] != fingerprint:
                    raise _Refused(
                        422,
                        "idempotency_key_reused",
                        "this Idempotency-Key was first used with another payload or delay",
                    )
                return _accepted(request, job, replayed=True)
        if not self.broker_up:
            raise _Refused(
                503, "broker_unavailable", "the job queue is unavailable; nothing was stored"
            )
        job_id = str(uuid.uuid4())
        now = _now()
        self.jobs[job_id] = {
            "id": job_id,
            "status": "queued",
            "result": None,
            "error": None,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
            "_payload": payload,
            "_key": key,
            "_fingerprint": fingerprint,
            "_gets": 0,
        }
        return _accepted(request, self.jobs[job_id], replayed=False)

    def _get(self, job_id: str) -> httpx.Response:
        job = self.jobs.get(job_id)
        if job is None:
            raise _Refused(404, "not_found", "no such job")
        job["_gets"] += 1
        if job["status"] in {"queued", "running"}:
            job.update(status="running", attempts=1, updated_at=_now())
            if job["_gets"] >= self.steps_to_finish:
                payload: str = job["_payload"]
                if payload.startswith(FAIL_PREFIX):
                    error = payload[len(FAIL_PREFIX) :].strip() or "failure requested by payload"
                    job.update(status="failed", error=error)
                else:
                    job.update(status="succeeded", result=_result(payload))
        return httpx.Response(200, json={k: v for k, v in job.items() if not k.startswith("_")})


def _accepted(request: httpx.Request, job: dict[str, Any], *, replayed: bool) -> httpx.Response:
    headers = {"Location": f"{JOBS_PATH}/{job['id']}"}  # a path, as the API sends it
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return httpx.Response(202, json={"id": job["id"], "status": job["status"]}, headers=headers)


def _idempotency_key(request: httpx.Request) -> str | None:
    key: str | None = request.headers.get("idempotency-key")
    if key is not None and not (
        1 <= len(key) <= MAX_IDEMPOTENCY_KEY and all("!" <= ch <= "~" for ch in key)
    ):
        raise _Refused(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters",
        )
    return key


def _validated(body: Any) -> tuple[str, float]:
    """``(payload, delay_seconds)``, or the API's 422 for the first field that is wrong."""
    if not isinstance(body, dict):
        _invalid(
            "body",
            "Input should be a valid dictionary or object to extract fields from",
            "model_attributes_type",
        )
    payload = body.get("payload")
    if "payload" not in body:
        _invalid("payload", "Field required", "missing")
    if not isinstance(payload, str):
        _invalid("payload", "Input should be a valid string", "string_type")
    if len(payload) > MAX_PAYLOAD_CHARS:
        _invalid(
            "payload",
            f"String should have at most {MAX_PAYLOAD_CHARS} characters",
            "string_too_long",
        )
    if "\x00" in payload:
        _invalid("payload", "Value error, payload must not contain NUL characters", "value_error")
    delay = body.get("delay_seconds", 0.0)
    # Strict, as the API: a JSON number only, neither "0" nor false.
    if isinstance(delay, bool) or not isinstance(delay, int | float):
        _invalid("delay_seconds", "Input should be a valid number", "float_type")
    if not math.isfinite(delay):
        _invalid("delay_seconds", "Input should be a finite number", "finite_number")
    if delay < 0:
        _invalid(
            "delay_seconds", "Input should be greater than or equal to 0", "greater_than_equal"
        )
    if delay > MAX_DELAY_SECONDS:
        _invalid(
            "delay_seconds",
            f"Input should be less than or equal to {MAX_DELAY_SECONDS}",
            "less_than_equal",
        )
    return payload, float(delay)


def _invalid(where: str, msg: str, kind: str) -> NoReturn:
    loc = ["body"] if where == "body" else ["body", where]
    errors = [{"loc": loc, "msg": msg, "type": kind}]
    raise _Refused(422, "invalid_request", f"{where}: {msg}", errors=errors)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _result(payload: str) -> dict[str, Any]:
    """What the real worker computes for a payload (boards.jobs.compute_result)."""
    return {
        "characters": len(payload),
        "words": len(payload.split()),
        "sha256": hashlib.sha256(payload.encode("utf-8")).hexdigest(),
    }
