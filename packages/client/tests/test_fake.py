"""boards_client.testing.FakeBoardsApi agrees with the real app: every test here runs once on
each, with the same expectations, at the HTTP level (statuses, error codes and details, headers,
bodies)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from boards_client.testing import FakeBoardsApi

BASE_URL = "http://boards.test"
JOBS = "/api/v1/jobs"
JOB_KEYS = {"id", "status", "result", "error", "attempts", "created_at", "updated_at"}
StartApi = Callable[..., httpx.BaseTransport]


@dataclass
class Api:
    http: httpx.Client
    work: Callable[[], object]  # the real app's jobs run only when a worker runs them

    def finish(self, job_id: str) -> dict[str, Any]:
        """GET the job until it is final, letting the worker run between reads."""
        for _ in range(10):
            job: dict[str, Any] = self.http.get(f"{JOBS}/{job_id}").json()
            if job["status"] in {"succeeded", "failed"}:
                return job
            self.work()
        raise AssertionError(f"job {job_id} did not finish: {job}")


def http(transport: httpx.BaseTransport) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=BASE_URL, transport=transport) as client:
        yield client


@pytest.fixture(params=["real", "fake"])
def api(request: pytest.FixtureRequest) -> Iterator[Api]:
    if request.param == "fake":
        transport: httpx.BaseTransport = FakeBoardsApi().transport()
        work: Callable[[], object] = lambda: None  # noqa: E731 - each GET advances a fake job
    else:
        transport = request.getfixturevalue("transport")
        work = request.getfixturevalue("work")
    for client in http(transport):
        yield Api(client, work)


@pytest.fixture(params=["real", "fake"])
def broker_down(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    if request.param == "fake":
        transport = FakeBoardsApi(broker_up=False).transport()
    else:
        start_api: StartApi = request.getfixturevalue("start_api")
        port = request.getfixturevalue("closed_port")
        transport = start_api(
            database_url=request.getfixturevalue("migrated_sqlite_url"),
            redis_url=f"redis://127.0.0.1:{port}/0",
        )
    yield from http(transport)


@pytest.fixture(params=["real", "fake"])
def not_ready(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    if request.param == "fake":
        transport = FakeBoardsApi(ready=False).transport()
    else:  # one real way to be not ready: a database not migrated yet
        start_api: StartApi = request.getfixturevalue("start_api")
        transport = start_api(
            database_url=request.getfixturevalue("sqlite_url"),
            redis_url=request.getfixturevalue("clean_redis_url"),
        )
    yield from http(transport)


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    """(status, error, detail) of an answer in the API's error shape, checking the shape."""
    body = response.json()
    assert set(body) - {"errors"} == {"error", "detail", "request_id"}, body
    assert body["request_id"] == response.headers["x-request-id"]
    return response.status_code, body["error"], body["detail"]


def test_accepting_a_job(api: Api) -> None:
    response = api.http.post(JOBS, json={"payload": "hi"}, headers={"X-Request-ID": "req-1"})
    assert response.status_code == 202
    body = response.json()
    assert body == {"id": body["id"], "status": "queued"}
    assert str(uuid.UUID(body["id"])) == body["id"]
    assert response.headers["location"] == f"{JOBS}/{body['id']}"  # a path, never from Host
    assert response.headers["x-request-id"] == "req-1"


def test_reading_a_job(api: Api) -> None:
    job_id = api.http.post(JOBS, json={"payload": "hi"}).json()["id"]
    job = api.http.get(f"{JOBS}/{job_id}").json()
    assert set(job) == JOB_KEYS
    assert (job["id"], job["result"], job["error"]) == (job_id, None, None)
    assert (job["status"], job["attempts"]) in {("queued", 0), ("running", 1)}


@pytest.mark.parametrize(
    ("payload", "outcome"),
    [
        (
            "hello world",
            {
                "status": "succeeded",
                "error": None,
                "result": {
                    "characters": 11,
                    "words": 2,
                    "sha256": hashlib.sha256(b"hello world").hexdigest(),
                },
            },
        ),
        ("fail: out of paper", {"status": "failed", "error": "out of paper", "result": None}),
        ("fail:", {"status": "failed", "error": "failure requested by payload", "result": None}),
        ("failing is fine", {"status": "succeeded", "error": None}),
    ],
)
def test_finished_jobs(api: Api, payload: str, outcome: dict[str, Any]) -> None:
    job_id = api.http.post(JOBS, json={"payload": payload}).json()["id"]
    job = api.finish(job_id)
    assert {key: job[key] for key in outcome} == outcome
    assert job["attempts"] == 1


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "payload: Field required"),
        ({"payload": 1}, "payload: Input should be a valid string"),
        (["x"], "body: Input should be a valid dictionary or object to extract fields from"),
        ({"payload": "x\x00"}, "payload: Value error, payload must not contain NUL characters"),
        (
            {"payload": "x", "delay_seconds": 31},
            "delay_seconds: Input should be less than or equal to 30",
        ),
        (
            {"payload": "x", "delay_seconds": -1},
            "delay_seconds: Input should be greater than or equal to 0",
        ),
        (
            {"payload": "x", "delay_seconds": "soon"},
            "delay_seconds: Input should be a valid number",
        ),
    ],
    ids=[
        "missing-payload",
        "payload-not-text",
        "body-not-an-object",
        "payload-with-nul",
        "delay-over-30",
        "delay-negative",
        "delay-not-a-number",
    ],
)
def test_json_that_is_no_job_request_is_422(api: Api, body: object, detail: str) -> None:
    assert error_of(api.http.post(JOBS, json=body)) == (422, "invalid_request", detail)


@pytest.mark.parametrize(
    ("content", "content_type", "answer"),
    [
        (b"{", "application/json", (400, "invalid_json", "the body is not valid JSON")),
        (
            b'{"payload": "\xff"}',
            "application/json",
            (400, "invalid_json", "the body could not be read as JSON"),
        ),
        (
            b"{}",
            "text/plain",
            (415, "unsupported_media_type", "send the body as Content-Type: application/json"),
        ),
    ],
    ids=["malformed-json", "not-utf-8", "not-json-media-type"],
)
def test_bodies_not_read_as_json(
    api: Api, content: bytes, content_type: str, answer: tuple[int, str, str]
) -> None:
    response = api.http.post(JOBS, content=content, headers={"content-type": content_type})
    assert error_of(response) == answer


@pytest.mark.parametrize("key", ["k" * 256, "two words"], ids=["too-long", "with-a-space"])
def test_bad_idempotency_keys_are_400(api: Api, key: str) -> None:
    response = api.http.post(JOBS, json={"payload": "x"}, headers={"Idempotency-Key": key})
    assert error_of(response) == (
        400,
        "invalid_idempotency_key",
        "Idempotency-Key must be 1 to 255 visible ASCII characters",
    )


@pytest.mark.parametrize(
    ("method", "path", "answer"),
    [
        ("GET", f"{JOBS}/{uuid.UUID(int=7)}", (404, "not_found", "no such job")),
        ("GET", f"{JOBS}/not-a-job-id", (404, "not_found", "no such job")),
        ("GET", "/nowhere", (404, "not_found", "Not Found")),
        ("DELETE", "/health", (405, "method_not_allowed", "Method Not Allowed")),
        ("GET", JOBS, (405, "method_not_allowed", "Method Not Allowed")),
    ],
    ids=["unknown-job", "not-a-job-id", "unknown-route", "method-not-allowed", "jobs-has-no-get"],
)
def test_unknown_jobs_routes_and_methods(
    api: Api, method: str, path: str, answer: tuple[int, str, str]
) -> None:
    assert error_of(api.http.request(method, path)) == answer


def test_field_errors_are_listed_without_the_rejected_value(api: Api) -> None:
    response = api.http.post(JOBS, json={"payload": "secret", "delay_seconds": 99})
    assert response.json()["errors"] == [
        {
            "loc": ["body", "delay_seconds"],
            "msg": "Input should be less than or equal to 30",
            "type": "less_than_equal",
        }
    ]


def test_idempotency_key_replays_or_refuses(api: Api) -> None:
    key = {"Idempotency-Key": "order-42"}
    first = api.http.post(JOBS, json={"payload": "p"}, headers=key)
    again = api.http.post(JOBS, json={"payload": "p", "delay_seconds": 0}, headers=key)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["id"] == first.json()["id"]
    assert (
        first.headers.get("idempotent-replayed"),
        again.headers.get("idempotent-replayed"),
    ) == (None, "true")
    other = api.http.post(JOBS, json={"payload": "other"}, headers=key)
    assert error_of(other) == (
        422,
        "idempotency_key_reused",
        "this Idempotency-Key was first used with another payload or delay",
    )


def test_broker_down_is_a_503_to_retry(broker_down: httpx.Client) -> None:
    response = broker_down.post(JOBS, json={"payload": "x"})
    assert error_of(response) == (
        503,
        "broker_unavailable",
        "the job queue is unavailable; nothing was stored",
    )
    assert response.headers["retry-after"] == "5"


def test_not_ready(not_ready: httpx.Client) -> None:
    response = not_ready.get("/health/ready")
    body = response.json()
    assert (response.status_code, body["status"]) == (503, "not_ready")
    assert body["reasons"] and all(isinstance(reason, str) for reason in body["reasons"])
    assert not_ready.get("/api/v1/system/health").json()["status"] == "degraded"
    assert not_ready.get("/health").json() == {"status": "ok"}


def test_ready_and_healthy(api: Api) -> None:
    assert api.http.get("/health").json() == {"status": "ok"}
    ready = api.http.get("/health/ready")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready", "reasons": []})
    health = api.http.get("/api/v1/system/health").json()
    assert set(health) == {"status", "version", "database", "broker", "migrations"}
    assert (health["status"], health["broker"]) == ("ok", {"status": "ok", "detail": "redis"})
    assert health["migrations"]["status"] == "ok"
