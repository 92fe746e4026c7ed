"""The job routes through the whole ASGI stack (FastAPI's TestClient), on SQLite and PostgreSQL,
with the session's real Redis: 202 promises, 503s that leave nothing behind, idempotency keys,
hostile input, request ids, the error shape and /metrics."""

from __future__ import annotations

import concurrent.futures
import json
import logging
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from boards.api.factory import create_app
from boards.db import get_database
from boards.models import Job
from boards.queue import held_job_ids, redis_broker
from boards.settings import Settings
from boards_testing.processes import free_port
from fastapi.testclient import TestClient
from sqlalchemy import func, make_url, select

MakeSettings = Callable[..., Settings]
JOBS = "/api/v1/jobs"
#: What no response may carry: SQL, driver and ORM names, tracebacks.
INTERNALS = ("SELECT", "INSERT", "psycopg", "sqlalchemy", "sqlite3", "Traceback", "[SQL")


def count_jobs(url: str) -> int:
    with get_database(url).session() as session:
        return int(session.scalar(select(func.count()).select_from(Job)) or 0)


def assert_error_shape(response: object, status: int, error: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["error"] == error, body
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]  # type: ignore[attr-defined]
    for word in INTERNALS:
        assert word not in response.text, response.text  # type: ignore[attr-defined]
    return dict(body)


@pytest.fixture
def api(
    make_settings: MakeSettings, migrated_url: str, clean_redis_url: str
) -> Iterator[TestClient]:
    settings = make_settings(database_url=migrated_url, redis_url=clean_redis_url)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def test_accepted_job_is_stored_and_sent(
    api: TestClient, migrated_url: str, clean_redis_url: str
) -> None:
    response = api.post(JOBS, json={"payload": "hello", "delay_seconds": 0.5})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued"
    assert response.headers["location"].endswith(f"{JOBS}/{body['id']}")
    assert body["id"] in held_job_ids(redis_broker(clean_redis_url))
    read = api.get(f"{JOBS}/{body['id']}").json()
    assert (read["status"], read["attempts"], read["result"]) == ("queued", 0, None)


def test_idempotency_key_replays_the_first_job(
    api: TestClient, migrated_url: str, clean_redis_url: str
) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = api.post(JOBS, json={"payload": "p"}, headers=headers)
    again = api.post(JOBS, json={"payload": "p"}, headers=headers)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert count_jobs(migrated_url) == 1

    reused = api.post(JOBS, json={"payload": "other"}, headers=headers)
    assert_error_shape(reused, 422, "idempotency_key_reused")
    assert first.json()["id"] not in reused.text  # a guessed key reveals no job
    assert count_jobs(migrated_url) == 1


def test_zero_is_one_delay_however_it_is_spelt(api: TestClient, migrated_url: str) -> None:
    headers = {"Idempotency-Key": "zero", "Content-Type": "application/json"}
    answers = [
        api.post(JOBS, content=b'{"payload": "p", "delay_seconds": %s}' % zero, headers=headers)
        for zero in (b"0", b"0.0", b"-0.0", b"0e5")
    ]
    assert [a.status_code for a in answers] == [202] * 4, answers[-1].text
    assert len({a.json()["id"] for a in answers}) == 1
    assert count_jobs(migrated_url) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve", "tab\there", "a b"])
def test_bad_idempotency_keys_are_400(api: TestClient, migrated_url: str, key: str) -> None:
    response = api.post(
        JOBS,
        content=json.dumps({"payload": "p"}).encode(),
        headers={
            "Content-Type": "application/json",
            "Idempotency-Key": key.encode(),
        },
    )
    assert_error_shape(response, 400, "invalid_idempotency_key")
    assert count_jobs(migrated_url) == 0


def test_unreachable_broker_is_503_and_leaves_nothing_behind(
    make_settings: MakeSettings, migrated_url: str
) -> None:
    settings = make_settings(
        database_url=migrated_url, redis_url=f"redis://127.0.0.1:{free_port()}/0"
    )
    with TestClient(create_app(settings)) as client:
        response = client.post(JOBS, json={"payload": "hello"})
    assert_error_shape(response, 503, "broker_unavailable")
    assert response.headers["retry-after"] == "5"
    assert count_jobs(migrated_url) == 0


def test_a_replay_while_the_broker_is_down_keeps_the_accepted_job(
    make_settings: MakeSettings, migrated_url: str, clean_redis_url: str
) -> None:
    """The first request got its 202; a client retry during a Redis outage must not undo it."""
    headers = {"Idempotency-Key": "k"}
    up = make_settings(database_url=migrated_url, redis_url=clean_redis_url)
    with TestClient(create_app(up)) as client:
        first = client.post(JOBS, json={"payload": "p"}, headers=headers)
    down = make_settings(database_url=migrated_url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(down)) as client:
        again = client.post(JOBS, json={"payload": "p"}, headers=headers)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["id"] == first.json()["id"]
    assert count_jobs(migrated_url) == 1


def test_no_broker_configured_is_503(make_settings: MakeSettings, migrated_url: str) -> None:
    with TestClient(create_app(make_settings(database_url=migrated_url))) as client:
        response = client.post(JOBS, json={"payload": "hello"})
    body = assert_error_shape(response, 503, "broker_not_configured")
    assert "BOARDS_REDIS_URL" in str(body["detail"])
    assert count_jobs(migrated_url) == 0


def test_database_down_is_503_without_internals(
    make_settings: MakeSettings, clean_redis_url: str
) -> None:
    url = f"postgresql://boards:secret@127.0.0.1:{free_port()}/boards"
    with TestClient(create_app(make_settings(database_url=url, redis_url=clean_redis_url))) as c:
        post = c.post(JOBS, json={"payload": "hello"})
        read = c.get(f"{JOBS}/00000000-0000-0000-0000-000000000000")
    for response in (post, read):
        assert_error_shape(response, 503, "database_unavailable")
        assert "secret" not in response.text


def test_connections_whose_statements_were_cancelled_serve_again(
    make_settings: MakeSettings, migrated_pg_url: str, clean_redis_url: str
) -> None:
    """Every kind of request, repeated until psycopg would prepare its statements, then
    cancelled by the statement timeout behind a lock, from many threads at once: no answer is a
    500, and once the lock is gone the same pooled connections serve again."""
    settings = make_settings(
        database_url=migrated_pg_url,
        redis_url=clean_redis_url,
        database_statement_timeout=0.5,
    )
    plain = make_url(migrated_pg_url).set(drivername="postgresql")

    def requests(client: TestClient, round_: int) -> dict[int, list[str]]:
        def one(index: int) -> tuple[int, str]:
            if index % 3 == 0:
                response = client.get(f"{JOBS}/00000000-0000-0000-0000-00000000000{index % 10}")
            else:
                key = {"Idempotency-Key": f"k{round_}-{index}"} if index % 3 == 1 else {}
                response = client.post(JOBS, json={"payload": f"p{index}"}, headers=key)
            return response.status_code, response.text[:200]

        answers: dict[int, list[str]] = {}
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for status, text in pool.map(one, range(24)):
                answers.setdefault(status, []).append(text)
        return answers

    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        warm = [requests(client, round_) for round_ in range(4)]
        with psycopg.connect(plain.render_as_string(hide_password=False)) as locker:
            locker.execute("SET idle_in_transaction_session_timeout = '20s'")
            locker.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
            locked = requests(client, 10)
            locker.rollback()
        after = [requests(client, round_) for round_ in range(20, 23)]
    for answers in warm + after:
        assert set(answers) <= {202, 404}, answers
    assert set(locked) == {503}, {status: texts[:2] for status, texts in locked.items()}


def test_a_locked_jobs_table_is_503_within_the_statement_timeout(
    make_settings: MakeSettings, migrated_pg_url: str, clean_redis_url: str
) -> None:
    """A table locked by someone else (a migration, an operator's LOCK TABLE) fails each request
    after BOARDS_DATABASE_STATEMENT_TIMEOUT with a 503 that stored nothing, instead of holding it
    for as long as the lock lasts; once the lock is gone, requests are accepted again."""
    timeout = 0.5
    settings = make_settings(
        database_url=migrated_pg_url,
        redis_url=clean_redis_url,
        database_statement_timeout=timeout,
    )
    plain = make_url(migrated_pg_url).set(drivername="postgresql")
    with (
        TestClient(create_app(settings), raise_server_exceptions=False) as client,
        psycopg.connect(plain.render_as_string(hide_password=False)) as locker,
    ):
        # Without the timeout the requests wait for the lock: PostgreSQL ends it after 10 s, so
        # the test fails on their 202s instead of hanging.
        locker.execute("SET idle_in_transaction_session_timeout = '10s'")
        locker.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        answers = [
            client.post(JOBS, json={"payload": "plain"}),
            client.post(JOBS, json={"payload": "keyed"}, headers={"Idempotency-Key": "k"}),
            client.get(f"{JOBS}/00000000-0000-0000-0000-000000000000"),
        ]
        waited = time.monotonic() - started
        locker.rollback()
        after = client.post(JOBS, json={"payload": "after"})
    for response in answers:
        assert_error_shape(response, 503, "database_unavailable")
    assert waited < len(answers) * (timeout + 1), f"{waited:.1f} s for {len(answers)} requests"
    assert after.status_code == 202, after.text
    assert count_jobs(migrated_pg_url) == 1


#: delay_seconds values that are no number of seconds from 0 to 30: 422.
BAD_DELAYS = ["NaN", "Infinity", "-Infinity", "1e999", "-1", "30.5", '"0"', "false"]
#: Bodies that are JSON but no job request: 422.
NOT_A_REQUEST = {
    **{f"delay {d}": b'{"payload": "x", "delay_seconds": %s}' % d.encode() for d in BAD_DELAYS},
    "lone surrogate": b'{"payload": "\\ud800"}',
    "NUL": b'{"payload": "a\\u0000b"}',
    "array": b'["payload"]',
    "string": b'"payload"',
    "empty": b"",
    "payload a number": b'{"payload": 12}',
}
#: Bodies the JSON parser refuses: 400.
NOT_JSON = {
    "malformed": b'{"payload": ',
    "not UTF-8": b'{"payload": "\xff\xfe"}',
    "huge integer": b'{"payload": "x", "delay_seconds": 1' + b"0" * 5000 + b"}",
    "deep nesting": b'{"payload": "x", "n": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
}
HOSTILE_BODIES = [
    *(pytest.param(body, 422, "invalid_request", id=name) for name, body in NOT_A_REQUEST.items()),
    *(pytest.param(body, 400, "invalid_json", id=name) for name, body in NOT_JSON.items()),
]


@pytest.mark.parametrize(("body", "status", "error"), HOSTILE_BODIES)
def test_hostile_bodies_get_a_4xx_and_store_nothing(
    api: TestClient, migrated_url: str, body: bytes, status: int, error: str
) -> None:
    response = api.post(JOBS, content=body, headers={"Content-Type": "application/json"})
    assert_error_shape(response, status, error)
    assert count_jobs(migrated_url) == 0


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_bodies_not_declared_json_are_415(
    api: TestClient, migrated_url: str, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = api.post(JOBS, content=b'{"payload": "x"}', headers=headers)
    assert_error_shape(response, 415, "unsupported_media_type")
    assert count_jobs(migrated_url) == 0


def test_json_with_parameters_and_suffix_types_are_accepted(api: TestClient) -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.boards+json"):
        response = api.post(
            JOBS, content=b'{"payload": "x"}', headers={"Content-Type": content_type}
        )
        assert response.status_code == 202, response.text


@pytest.mark.parametrize(
    "job_id",
    [
        "not-a-uuid",
        "%00",
        "00000000-0000-0000-0000-00000000000%00",
        "x" * 5000,
        "00000000-0000-0000-0000-000000000000",
        "00000000000000000000000000000000",
    ],
)
def test_unknown_or_malformed_job_ids_are_404(api: TestClient, job_id: str) -> None:
    assert_error_shape(api.get(f"{JOBS}/{job_id}"), 404, "not_found")


def test_unknown_routes_and_methods_use_the_error_shape(api: TestClient) -> None:
    assert_error_shape(api.get("/nope"), 404, "not_found")
    assert_error_shape(api.delete(JOBS), 405, "method_not_allowed")


@pytest.mark.parametrize("path", ["/health/", f"{JOBS}/", "/metrics/", "/nope/"])
def test_a_trailing_slash_is_a_404_not_a_redirect(api: TestClient, path: str) -> None:
    for response in (api.get(path, follow_redirects=False), api.post(path, json={"payload": "x"})):
        assert_error_shape(response, 404, "not_found")
        assert "location" not in response.headers


def test_location_is_a_path_whatever_the_host_header(api: TestClient) -> None:
    response = api.post(JOBS, json={"payload": "x"}, headers={"Host": "evil.example"})
    assert response.status_code == 202
    assert response.headers["location"] == f"{JOBS}/{response.json()['id']}"


def test_request_ids_are_honoured_when_sane(api: TestClient) -> None:
    assert (
        api.get("/health", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    )
    insane = "bad id\u00e9".encode("latin-1")
    replaced = api.get("/health", headers={"X-Request-ID": insane}).headers["x-request-id"]  # type: ignore[dict-item]
    assert len(replaced) == 32 and replaced.isalnum()
    assert len(api.get("/health").headers["x-request-id"]) == 32


def test_an_unexpected_error_is_a_bare_500_with_the_logged_request_id(
    api: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    def boom() -> None:
        raise RuntimeError("SELECT secret FROM internals")

    api.app.add_api_route("/boom", boom)  # type: ignore[attr-defined]
    with caplog.at_level(logging.ERROR, logger="boards.api"):
        response = api.get("/boom", headers={"X-Request-ID": "req-7"})
    body = assert_error_shape(response, 500, "internal_error")
    assert body == {"error": "internal_error", "detail": "internal error", "request_id": "req-7"}
    logged = [r for r in caplog.records if "req-7" in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback is in the log, not the body


def test_metrics_count_jobs_and_requests(api: TestClient) -> None:
    job_id = api.post(JOBS, json={"payload": "m"}).json()["id"]
    api.get(f"{JOBS}/{job_id}")
    api.get("/nope")
    text = api.get("/metrics").text
    assert 'boards_jobs{status="queued"} 1.0' in text
    assert 'boards_jobs{status="succeeded"} 0.0' in text
    assert "boards_oldest_queued_job_age_seconds " in text
    assert 'boards_http_requests_total{method="POST",route="/api/v1/jobs",status="202"} 1.0' in text
    assert (
        'boards_http_requests_total{method="GET",route="/api/v1/jobs/{job_id}",status="200"} 1.0'
        in text
    )
    assert 'boards_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text


def test_metrics_name_the_docs_routes(api: TestClient) -> None:
    for path in ("/docs", "/openapi.json", "/redoc"):
        assert api.get(path).status_code == 200
    text = api.get("/metrics").text
    for path in ("/docs", "/openapi.json", "/redoc"):
        assert f'boards_http_requests_total{{method="GET",route="{path}",status="200"}} 1.0' in text
    assert 'route="unmatched"' not in text


def test_a_streamed_body_past_the_limit_is_413(api: TestClient, migrated_url: str) -> None:
    chunks = (b" " * 65_536 for _ in range(32))  # 2 MiB, chunked: no Content-Length to judge
    response = api.post(JOBS, content=chunks, headers={"Content-Type": "application/json"})
    assert_error_shape(response, 413, "body_too_large")
    assert count_jobs(migrated_url) == 0
