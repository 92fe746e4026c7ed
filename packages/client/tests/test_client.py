"""BoardsClient against the real API (see conftest). httpx.MockTransport only stands in for
answers the real app never gives (a 500 of a proxy, HTML, a JSON list)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from importlib.metadata import version

import httpx
import pytest
from boards.db import Database
from boards.jobs import get_job
from boards.models import Job as StoredJob
from boards_client import BoardsClient, BoardsError, Job
from sqlalchemy import func, select

BASE_URL = "http://boards.test"
Work = Callable[[], list[str]]
StartApi = Callable[..., httpx.BaseTransport]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_health(client: BoardsClient, sent: list[httpx.Request]) -> None:
    assert client.health() == {"status": "ok"}
    assert sent[-1].url == httpx.URL(f"{BASE_URL}/health")


def test_system_health(client: BoardsClient) -> None:
    health = client.system_health()
    assert health["status"] == "ok"
    assert health["version"] == version("boards-backend")
    assert health["database"] == {"status": "ok", "detail": "sqlite"}
    assert health["broker"] == {"status": "ok", "detail": "redis"}
    assert health["migrations"]["status"] == "ok"


def test_ready_true_on_a_migrated_database(client: BoardsClient) -> None:
    assert client.ready() is True


def test_ready_false_before_migrations(
    start_api: StartApi, sqlite_url: str, clean_redis_url: str
) -> None:
    transport = start_api(database_url=sqlite_url, redis_url=clean_redis_url)
    with BoardsClient(BASE_URL, transport=transport) as c:
        assert c.ready() is False


def test_ready_other_error_raises() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(500, text="boom"))
    with BoardsClient("http://x", transport=transport) as c, pytest.raises(BoardsError) as err:
        c.ready()
    assert err.value.status_code == 500
    assert (err.value.code, err.value.request_id) == (None, None)  # not the API's error shape


def test_create_job_posts_documented_body(
    client: BoardsClient, sent: list[httpx.Request], database: Database
) -> None:
    job = client.create_job("hello")
    assert job.status == "queued"
    assert str(uuid.UUID(job.id)) == job.id
    request = sent[-1]
    assert (request.method, request.url.path) == ("POST", "/api/v1/jobs")
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"payload": "hello"}
    stored = get_job(database, job.id)
    assert stored is not None
    assert (stored.payload, stored.delay_seconds, stored.status) == ("hello", 0.0, "queued")


def test_create_job_sends_delay_only_when_set(
    client: BoardsClient, sent: list[httpx.Request], database: Database
) -> None:
    job = client.create_job("a", delay_seconds=1.5)
    assert json.loads(sent[-1].content) == {"payload": "a", "delay_seconds": 1.5}
    stored = get_job(database, job.id)
    assert stored is not None and stored.delay_seconds == 1.5


def test_idempotency_key_returns_the_first_job(
    client: BoardsClient, sent: list[httpx.Request]
) -> None:
    first = client.create_job("a", idempotency_key="order-7")
    assert sent[-1].headers["idempotency-key"] == "order-7"
    assert client.create_job("a", idempotency_key="order-7").id == first.id
    assert client.create_job("a").id != first.id
    assert "idempotency-key" not in sent[-1].headers
    with pytest.raises(BoardsError) as err:
        client.create_job("b", idempotency_key="order-7")
    assert (err.value.status_code, err.value.code) == (422, "idempotency_key_reused")


@pytest.mark.parametrize(
    ("payload", "delay", "exc"),
    [(b"bytes", 0, TypeError), ("ok", -1, ValueError)],
)
def test_create_job_rejects_bad_input_without_a_request(
    client: BoardsClient,
    sent: list[httpx.Request],
    payload: object,
    delay: float,
    exc: type[Exception],
) -> None:
    with pytest.raises(exc):
        client.create_job(payload, delay_seconds=delay)  # type: ignore[arg-type]
    assert sent == []


def test_delay_over_the_limit_is_the_apis_422(client: BoardsClient) -> None:
    with pytest.raises(BoardsError) as err:
        client.create_job("x", delay_seconds=31)
    assert (err.value.status_code, err.value.code) == (422, "invalid_request")
    assert json.loads(err.value.body)["detail"].startswith("delay_seconds: ")


def test_get_job_full_shape(client: BoardsClient) -> None:
    created = client.create_job("x")
    job = client.get_job(created.id)
    assert (job.id, job.status, job.result, job.error, job.attempts) == (
        created.id,
        "queued",
        None,
        None,
        0,
    )
    assert job.created_at is not None and job.updated_at is not None
    assert datetime.fromisoformat(job.created_at) <= datetime.fromisoformat(job.updated_at)


@pytest.mark.parametrize("job_id", [str(uuid.UUID(int=7)), "nope"])
def test_get_unknown_job_is_boards_error_404(client: BoardsClient, job_id: str) -> None:
    with pytest.raises(BoardsError) as err:
        client.get_job(job_id)
    assert (err.value.status_code, err.value.code) == (404, "not_found")
    assert err.value.request_id is not None
    assert f"GET {BASE_URL}/api/v1/jobs/{job_id} answered 404" in str(err.value)


def test_get_job_rejects_path_like_id(client: BoardsClient, sent: list[httpx.Request]) -> None:
    with pytest.raises(ValueError, match="not a job id"):
        client.get_job("../health")
    assert sent == []


def test_wait_for_job_succeeds(client: BoardsClient, work: Work) -> None:
    job = client.create_job("hello", delay_seconds=3)
    seen: list[float] = []

    def worker_runs(seconds: float) -> None:  # the client's pause between polls
        seen.append(seconds)
        work()

    done = client.wait_for_job(job.id, timeout=5, interval=0.25, sleep=worker_runs)
    assert seen == [0.25]  # one poll found it queued, the next one finished
    assert (done.status, done.error, done.attempts, done.finished) == ("succeeded", None, 1, True)
    assert done.result == {"characters": 5, "words": 1, "sha256": sha256("hello")}


@pytest.mark.parametrize(
    ("payload", "status", "error"),
    [
        ("fail: out of paper", "failed", "out of paper"),
        ("fail:", "failed", "failure requested by payload"),
        ("fail", "succeeded", None),  # only the `fail:` prefix fails
    ],
)
def test_wait_for_job_returns_a_failed_job(
    client: BoardsClient, work: Work, payload: str, status: str, error: str | None
) -> None:
    job = client.create_job(payload)
    done = client.wait_for_job(job.id, timeout=5, interval=0.01, sleep=lambda _: work())
    assert (done.status, done.error) == (status, error)


def test_wait_for_job_times_out_clearly(client: BoardsClient) -> None:
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    job = client.create_job("never run")  # no worker: it stays queued
    with pytest.raises(TimeoutError) as err:
        client.wait_for_job(job.id, timeout=1, interval=0.3, clock=lambda: now[0], sleep=sleep)
    assert str(err.value) == (
        f"job {job.id} still 'queued' after 1 s (waiting for one of: failed, succeeded)"
    )
    assert sleeps == pytest.approx([0.3, 0.3, 0.3, 0.1])


def test_no_broker_is_the_apis_503(start_api: StartApi, migrated_sqlite_url: str) -> None:
    transport = start_api(database_url=migrated_sqlite_url, redis_url=None)
    with BoardsClient(BASE_URL, transport=transport) as c, pytest.raises(BoardsError) as err:
        c.create_job("x")
    assert (err.value.status_code, err.value.code) == (503, "broker_not_configured")


def test_broker_down_is_a_503_that_stored_nothing(
    start_api: StartApi, migrated_sqlite_url: str, closed_port: int, database: Database
) -> None:
    transport = start_api(
        database_url=migrated_sqlite_url, redis_url=f"redis://127.0.0.1:{closed_port}/0"
    )
    with BoardsClient(BASE_URL, transport=transport) as c:
        with pytest.raises(BoardsError) as err:
            c.create_job("x")
        assert (err.value.status_code, err.value.code) == (503, "broker_unavailable")
        body = json.loads(err.value.body)
        assert set(body) == {"error", "detail", "request_id"}
        assert err.value.request_id == body["request_id"]
        assert "nothing was stored" in body["detail"]
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(StoredJob)) == 0


def test_non_2xx_is_boards_error_with_status_and_body() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(422, json={"detail": "bad"}))
    with BoardsClient("http://x/", transport=transport) as c, pytest.raises(BoardsError) as err:
        c.create_job("x")
    assert err.value.status_code == 422
    assert json.loads(err.value.body) == {"detail": "bad"}
    assert "POST http://x/api/v1/jobs answered 422" in str(err.value)


@pytest.mark.parametrize(
    "answer", [httpx.Response(200, text="<html>"), httpx.Response(200, json=["a", "list"])]
)
def test_non_json_or_non_object_answer_is_boards_error(answer: httpx.Response) -> None:
    transport = httpx.MockTransport(lambda r: answer)
    with BoardsClient("http://x", transport=transport) as c, pytest.raises(BoardsError) as err:
        c.health()
    assert "GET http://x/health answered 200" in str(err.value)


def test_job_answer_without_id_is_boards_error() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(202, json={"status": "queued"}))
    with BoardsClient("http://x", transport=transport) as c, pytest.raises(BoardsError):
        c.create_job("x")


def test_base_url_trailing_slash_and_scheme() -> None:
    assert BoardsClient("http://h:8800/").base_url == "http://h:8800"
    with pytest.raises(ValueError, match="http"):
        BoardsClient("h:8800")
    with pytest.raises(ValueError, match="timeout"):
        BoardsClient("http://h", timeout=0)


def test_context_manager_closes() -> None:
    with BoardsClient("http://h") as c:
        pass
    assert c._http.is_closed


def test_job_from_api_checks_its_fields() -> None:
    job = Job.from_api({"id": "1", "status": "succeeded", "result": {"n": 1}, "attempts": 2})
    assert (job.result, job.attempts) == ({"n": 1}, 2)
    for bad in (["not", "a", "dict"], {"id": "1", "status": "x", "attempts": "2"}):
        with pytest.raises(ValueError):
            Job.from_api(bad)
