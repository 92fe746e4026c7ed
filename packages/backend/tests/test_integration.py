"""End to end on real PostgreSQL and Redis: API -> Redis -> worker (dramatiq-gevent) -> database.

No mocks: the worker runs as `boards worker` (exec'ing dramatiq-gevent) in a subprocess, the API
either as `boards api` (uvicorn) or in-process through TestClient.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from boards.api.factory import create_app
from boards.settings import load_settings
from boards_testing.plugin import publish_on_loopback
from boards_testing.processes import BOARDS, base_env, free_port, run_boards, stop_process
from boards_testing.waiting import wait_for
from fastapi.testclient import TestClient


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None


StartProc = Callable[..., Proc]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[StartProc]:
    """Start `boards ROLE` with the given BOARDS_* settings; everything is stopped afterwards."""
    started: list[Proc] = []

    def _start(role: str, **settings: str) -> Proc:
        log = tmp_path / f"{role}-{len(started)}.log"
        env = base_env(**{f"BOARDS_{k.upper()}": str(v) for k, v in settings.items()})
        with log.open("wb") as out:
            # A session of its own, so a test can SIGKILL the whole process tree (dramatiq's
            # supervisor and its worker processes), as the OOM killer or `docker kill` would.
            popen = subprocess.Popen(
                [BOARDS, role],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(popen, log, env)
        started.append(proc)
        return proc

    yield _start
    for proc in started:
        stop_process(proc.popen)


@pytest.fixture
def worker_settings(migrated_pg_url: str, clean_redis_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "database_url": migrated_pg_url,
        "redis_url": clean_redis_url,
        "run_dir": str(tmp_path / "run"),
        "worker_threads": "4",
        "worker_metrics_port": "0",
    }


@pytest.fixture
def client(worker_settings: dict[str, str]) -> Iterator[TestClient]:
    """The API in-process (TestClient), on the same database and Redis as the worker."""
    with TestClient(create_app(load_settings(**worker_settings))) as api:
        yield api


def _job(client: Any, job_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _wait_status(
    client: Any, job_id: str, statuses: set[str], timeout: float = 60
) -> dict[str, Any]:
    return wait_for(  # type: ignore[no-any-return]
        lambda: (job := _job(client, job_id))["status"] in statuses and job,
        timeout=timeout,
        what=f"job {job_id} to become {sorted(statuses)}",
    )


def _submit_and_wait_running(client: Any, payload: str, delay_seconds: float) -> str:
    """Submit a job and wait until a worker is running it; returns its id."""
    response = client.post(
        "/api/v1/jobs", json={"payload": payload, "delay_seconds": delay_seconds}
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    _wait_status(client, job_id, {"running"})
    return job_id


def _stop_quickly(proc: Proc) -> None:
    """SIGTERM: the process exits 0 well inside Docker's 10 s stop timeout."""
    started = time.monotonic()
    assert stop_process(proc.popen) == 0, proc.output()
    assert time.monotonic() - started < 10


def _heartbeats(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("worker-*.heartbeat")) if run_dir.is_dir() else []


def test_job_round_trip_through_uvicorn_redis_and_the_worker(
    start: StartProc, fresh_pg_url: str, clean_redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    # A fresh database: the API migrates it on start (BOARDS_MIGRATE_ON_START defaults to true).
    api = start(
        "api",
        database_url=fresh_pg_url,
        redis_url=clean_redis_url,
        api_host="127.0.0.1",
        api_port=str(port),
        run_dir=str(tmp_path / "api-run"),
    )
    worker = start(
        "worker",
        database_url=fresh_pg_url,
        redis_url=clean_redis_url,
        run_dir=str(tmp_path / "run"),
        worker_threads="4",
    )
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

        def ready() -> bool:
            assert api.alive(), api.output()
            try:
                return client.get("/health/ready").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, timeout=120, what="the API to be ready")
        payload = "the round trip\nworks"
        response = client.post("/api/v1/jobs", json={"payload": payload})
        assert response.status_code == 202, response.text
        accepted = response.json()
        assert accepted["status"] == "queued"
        assert response.headers["location"].endswith(f"/api/v1/jobs/{accepted['id']}")

        job = _wait_status(client, accepted["id"], {"succeeded", "failed"}, timeout=90)
        assert job["status"] == "succeeded", (job, worker.output())
        assert job["result"] == {
            "characters": len(payload),
            "words": 4,
            "sha256": hashlib.sha256(payload.encode()).hexdigest(),
        }
        assert job["error"] is None
        health = client.get("/api/v1/system/health").json()
        assert health["status"] == "ok"
        assert health["broker"]["status"] == "ok"
        assert health["database"]["detail"] == "postgresql"
    assert worker.alive(), worker.output()
    assert f"job {accepted['id']} succeeded" in worker.output()


def test_failing_job_and_worker_heartbeat(
    start: StartProc, worker_settings: dict[str, str], client: TestClient
) -> None:
    run_dir = Path(worker_settings["run_dir"])
    worker = start("worker", **worker_settings)
    failing = client.post("/api/v1/jobs", json={"payload": "fail: on purpose"})
    fine = client.post("/api/v1/jobs", json={"payload": "fine", "delay_seconds": 0.5})
    assert failing.status_code == fine.status_code == 202

    failed = _wait_status(client, failing.json()["id"], {"succeeded", "failed"})
    assert (failed["status"], failed["error"], failed["result"]) == ("failed", "on purpose", None)
    assert _wait_status(client, fine.json()["id"], {"succeeded"})["result"]["words"] == 1
    assert "Retrying" not in worker.output(), "a deterministic failure is not retried"

    # Heartbeat: present and fresh while the worker runs, gone after a clean stop.
    wait_for(
        lambda: any(time.time() - p.stat().st_mtime < 20 for p in _heartbeats(run_dir)),
        timeout=30,
        what="a fresh heartbeat file",
    )
    check = run_boards("healthcheck", env=worker.env)
    assert check.returncode == 0, check.stderr
    assert "worker heartbeat" in check.stdout

    _stop_quickly(worker)
    assert _heartbeats(run_dir) == []


def test_sigterm_lets_a_short_job_finish(
    start: StartProc, worker_settings: dict[str, str], client: TestClient
) -> None:
    worker = start("worker", **worker_settings)
    job_id = _submit_and_wait_running(client, "short", delay_seconds=2)
    _stop_quickly(worker)
    assert _job(client, job_id)["status"] == "succeeded"


def test_sigterm_hands_a_long_job_back_to_the_queue(
    start: StartProc, worker_settings: dict[str, str], client: TestClient
) -> None:
    first = start("worker", worker_shutdown_timeout="2", **worker_settings)
    # Long enough to outlast the stop's grace (1 s); the second worker runs all of it again.
    job_id = _submit_and_wait_running(client, "long", delay_seconds=4)
    _stop_quickly(first)
    assert _job(client, job_id)["status"] == "queued", first.output()
    assert "handed back to the queue" in first.output()

    second = start("worker", **worker_settings)
    job = _wait_status(client, job_id, {"succeeded", "failed"}, timeout=60)
    assert job["status"] == "succeeded", second.output()
    assert job["result"]["characters"] == 4


def test_worker_keeps_running_while_redis_is_unreachable(start: StartProc, tmp_path: Path) -> None:
    worker = start(
        "worker",
        database_url=f"sqlite:///{tmp_path / 'boards.db'}",
        redis_url="redis://host.invalid:6379/0",  # does not resolve
        run_dir=str(tmp_path / "run"),
    )
    wait_for(
        lambda: worker.output().count("Consumer encountered a connection error") >= 2,
        timeout=60,
        what="the worker to retry its Redis connection",
    )
    assert worker.alive(), worker.output()
    assert "heartbeat: redis did not answer" in worker.output()
    check = run_boards("healthcheck", env=worker.env)
    assert check.returncode == 1
    assert "stale" in check.stderr, "the worker is found (not the API) and reported unhealthy"
    _stop_quickly(worker)


def test_readiness_follows_redis(migrated_pg_url: str, redis_image: str, tmp_path: Path) -> None:
    """Our own Redis: ready with it, 503 once it is stopped, ready again once it is back."""
    try:
        from testcontainers.community.redis import RedisContainer
    except ImportError:  # testcontainers < 4.15
        from testcontainers.redis import RedisContainer  # type: ignore[no-redef]

    port = free_port()
    container = RedisContainer(redis_image)
    publish_on_loopback(container, 6379)
    container.ports["6379"] = ("127.0.0.1", port)  # fixed, so it survives a restart
    with container:
        settings = load_settings(
            database_url=migrated_pg_url,
            redis_url=f"redis://127.0.0.1:{port}/0",
            run_dir=tmp_path / "run",
        )
        with TestClient(create_app(settings)) as client:
            assert client.get("/health/ready").status_code == 200

            container.get_wrapped_container().stop(timeout=5)
            started = time.monotonic()
            response = client.get("/health/ready")
            assert time.monotonic() - started < 10
            assert response.status_code == 503
            assert response.json()["reasons"][0].startswith("broker down")
            assert client.get("/api/v1/system/health").json()["broker"]["status"] == "down"
            rejected = client.post("/api/v1/jobs", json={"payload": "x"})
            assert rejected.status_code == 503
            assert rejected.json()["error"] == "broker_unavailable"

            container.get_wrapped_container().start()
            wait_for(
                lambda: client.get("/health/ready").status_code == 200,
                timeout=60,
                what="readiness to come back with Redis",
            )


def test_a_killed_workers_job_runs_again_on_another_worker(
    start: StartProc, worker_settings: dict[str, str], client: TestClient
) -> None:
    fast = {**worker_settings, "job_lease": "3", "reconcile_interval": "1"}
    fast["broker_heartbeat_timeout"] = "2"
    first = start("worker", **fast)
    job_id = _submit_and_wait_running(client, "survivor", delay_seconds=4)
    os.killpg(first.popen.pid, signal.SIGKILL)  # no shutdown, no hand-back: the lease runs out
    first.popen.wait(timeout=10)

    metrics_port = free_port()
    second = start("worker", **{**fast, "worker_metrics_port": str(metrics_port)})
    job = _wait_status(client, job_id, {"succeeded", "failed"}, timeout=60)
    assert job["status"] == "succeeded", second.output()
    assert job["attempts"] == 2  # claimed once by each worker; the result written once

    text = wait_for(
        lambda: _get_text(f"http://127.0.0.1:{metrics_port}/metrics"),
        timeout=30,
        what="the worker's metrics endpoint",
    )
    assert 'boards_reconciler_runs_total{outcome="ok"}' in text
    assert "dramatiq_message_duration_milliseconds_bucket" in text


def test_the_worker_deletes_jobs_past_the_retention_and_counts_them(
    start: StartProc, worker_settings: dict[str, str], client: TestClient
) -> None:
    from boards.db import get_database
    from sqlalchemy import text

    old, young = (client.post("/api/v1/jobs", json={"payload": p}).json()["id"] for p in "oy")
    metrics_port = free_port()
    worker = start(
        "worker",
        **{**worker_settings, "worker_metrics_port": str(metrics_port)},
        reconcile_interval="1",
        job_retention="3600",
    )
    for job_id in (old, young):
        assert _wait_status(client, job_id, {"succeeded"})["status"] == "succeeded"
    with get_database(worker_settings["database_url"]).engine.begin() as conn:
        conn.execute(
            text("UPDATE jobs SET finished_at = now() - interval '2 hours' WHERE id = :id"),
            {"id": old},
        )

    wait_for(
        lambda: client.get(f"/api/v1/jobs/{old}").status_code == 404,
        timeout=30,
        what="the job past the retention to be deleted",
    )
    assert _job(client, young)["status"] == "succeeded", worker.output()
    wait_for(
        lambda: (
            "boards_jobs_pruned_total 1.0"
            in (_get_text(f"http://127.0.0.1:{metrics_port}/metrics") or "")
        ),
        timeout=30,
        what="the worker's metrics to count the deleted job",
    )


def test_jobs_flushed_from_redis_are_sent_again(
    start: StartProc, worker_settings: dict[str, str], client: TestClient
) -> None:
    import redis

    ids = [client.post("/api/v1/jobs", json={"payload": f"j{i}"}).json()["id"] for i in range(5)]
    redis.Redis.from_url(worker_settings["redis_url"]).flushall()  # the queue forgets them
    worker = start("worker", reconcile_interval="1", reconcile_queued_after="8", **worker_settings)
    for job_id in ids:
        job = _wait_status(client, job_id, {"succeeded", "failed"}, timeout=60)
        assert job["status"] == "succeeded", worker.output()
    assert "lost from the queue" in worker.output()


def _get_text(url: str) -> str | None:
    try:
        response = httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None
    return response.text if response.status_code == 200 else None


def test_a_live_worker_keeps_its_lease_on_a_job_longer_than_the_lease(
    start: StartProc, worker_settings: dict[str, str], client: TestClient
) -> None:
    worker = start("worker", job_lease="3", reconcile_interval="1", **worker_settings)
    job_id = _submit_and_wait_running(client, "long", delay_seconds=7)
    job = _wait_status(client, job_id, {"succeeded", "failed"}, timeout=60)
    # Without renewal the reconciler would have taken the job back after 3 s, and the first
    # delivery's result would have been dropped for a second attempt's.
    assert (job["status"], job["attempts"]) == ("succeeded", 1), worker.output()
    assert "expired lease" not in worker.output()
