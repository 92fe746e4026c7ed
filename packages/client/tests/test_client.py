"""BoardsClient against the documented API shape (httpx.MockTransport)."""

from __future__ import annotations

import json

import httpx
import pytest
from boards_client import BoardsClient, BoardsError, Job
from boards_client.testing import FakeBoardsApi


def test_health(client: BoardsClient, api: FakeBoardsApi) -> None:
    assert client.health() == {"status": "ok"}
    assert api.requests[-1].url == httpx.URL("http://boards.test/health")


def test_system_health(client: BoardsClient) -> None:
    health = client.system_health()
    assert health["status"] == "ok"
    assert {"database", "broker", "migrations", "version"} <= health.keys()


def test_ready_true_and_false(client: BoardsClient, api: FakeBoardsApi) -> None:
    assert client.ready() is True
    api.ready = False
    assert client.ready() is False


def test_ready_other_error_raises() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(500, text="boom"))
    with BoardsClient("http://x", transport=transport) as c, pytest.raises(BoardsError) as err:
        c.ready()
    assert err.value.status_code == 500


def test_create_job_posts_documented_body(client: BoardsClient, api: FakeBoardsApi) -> None:
    job = client.create_job("hello")
    assert job == Job(id="job-1", status="queued")
    request = api.requests[-1]
    assert request.method == "POST"
    assert request.url.path == "/api/v1/jobs"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"payload": "hello"}


def test_create_job_sends_the_idempotency_key_only_when_given(
    client: BoardsClient, api: FakeBoardsApi
) -> None:
    client.create_job("a", idempotency_key="order-7")
    assert api.requests[-1].headers["idempotency-key"] == "order-7"
    client.create_job("b")
    assert "idempotency-key" not in api.requests[-1].headers


def test_create_job_sends_delay_only_when_set(client: BoardsClient, api: FakeBoardsApi) -> None:
    client.create_job("a", delay_seconds=1.5)
    assert api.bodies[-1] == {"payload": "a", "delay_seconds": 1.5}


@pytest.mark.parametrize(
    ("payload", "delay", "exc"),
    [(b"bytes", 0, TypeError), ("ok", -1, ValueError)],
)
def test_create_job_rejects_bad_input(
    client: BoardsClient, api: FakeBoardsApi, payload: object, delay: float, exc: type[Exception]
) -> None:
    with pytest.raises(exc):
        client.create_job(payload, delay_seconds=delay)  # type: ignore[arg-type]
    assert api.requests == []


def test_get_job_full_shape(client: BoardsClient) -> None:
    created = client.create_job("x")
    job = client.get_job(created.id)
    assert job.id == created.id
    assert job.status == "running"
    assert job.result is None and job.error is None
    assert job.created_at == "2025-01-01T00:00:00Z"


def test_get_unknown_job_is_boards_error_404(client: BoardsClient) -> None:
    with pytest.raises(BoardsError) as err:
        client.get_job("nope")
    assert err.value.status_code == 404
    assert json.loads(err.value.body)["error"] == "not_found"
    assert "404" in str(err.value)


def test_get_job_rejects_path_like_id(client: BoardsClient) -> None:
    with pytest.raises(ValueError, match="not a job id"):
        client.get_job("../health")


def test_wait_for_job_succeeds(client: BoardsClient, api: FakeBoardsApi) -> None:
    api.steps_to_finish = 3
    job = client.create_job("hello")
    done = client.wait_for_job(job.id, timeout=5, interval=0.001)
    assert done.status == "succeeded"
    assert done.result is not None and done.result["characters"] == len("hello")
    assert done.finished


def test_wait_for_job_returns_failed_job(client: BoardsClient) -> None:
    job = client.create_job("fail")
    done = client.wait_for_job(job.id, timeout=5, interval=0.001)
    assert done.status == "failed"
    assert done.error == "payload asked to fail"


def test_wait_for_job_times_out_clearly(client: BoardsClient, api: FakeBoardsApi) -> None:
    api.steps_to_finish = 10**6
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    job = client.create_job("slow")
    with pytest.raises(TimeoutError, match=r"job job-1 still 'running' after 1 s"):
        client.wait_for_job(job.id, timeout=1, interval=0.3, clock=lambda: now[0], sleep=sleep)
    assert sleeps[:3] == [0.3, 0.3, 0.3]
    assert sum(sleeps) == pytest.approx(1.0)


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


def test_job_from_api_keeps_the_result_object() -> None:
    job = Job.from_api({"id": "1", "status": "succeeded", "result": {"n": 1}})
    assert job.result == {"n": 1}
    with pytest.raises(ValueError):
        Job.from_api(["not", "a", "dict"])
