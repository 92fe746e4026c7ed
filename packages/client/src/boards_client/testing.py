"""An in-memory fake of the boards API's documented HTTP shape, for tests of code that uses
the client (and for the client's own tests)::

    from boards_client import BoardsClient
    from boards_client.testing import FakeBoardsApi

    api = FakeBoardsApi()
    with BoardsClient("http://boards.test", transport=api.transport()) as client:
        job = client.wait_for_job(client.create_job("hi").id, interval=0.001)

It fakes the HTTP contract only, not the service: each GET of a job advances it one step along
queued -> running -> succeeded (result: the backend's {characters, words, sha256}), or failed
when the payload is ``"fail"``; ``ready = False`` makes the readiness route answer 503.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

JOB_PATH = re.compile(r"^/api/v1/jobs/(?P<id>[^/]+)$")


@dataclass
class FakeBoardsApi:
    ready: bool = True
    steps_to_finish: int = 2  # GETs before a job finishes
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        """An httpx transport answering from this fake."""
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request the way the documented API does."""
        self.requests.append(request)
        path = request.url.path
        if request.method == "GET" and path == "/health":
            return httpx.Response(200, json={"status": "ok"})
        if request.method == "GET" and path == "/api/v1/system/health":
            return httpx.Response(
                200,
                json={
                    "status": "ok" if self.ready else "degraded",
                    "version": "0.1.0",
                    "database": {"status": "ok" if self.ready else "down", "detail": "fake"},
                    "broker": {"status": "ok", "detail": "redis"},
                    "migrations": {"current": "head", "head": "head", "status": "ok"},
                },
            )
        if request.method == "GET" and path == "/health/ready":
            if self.ready:
                return httpx.Response(200, json={"status": "ready", "reasons": []})
            reasons = ["database down: fake"]
            return httpx.Response(503, json={"status": "not_ready", "reasons": reasons})
        if request.method == "POST" and path == "/api/v1/jobs":
            return self._create(request)
        match = JOB_PATH.match(path)
        if request.method == "GET" and match:
            return self._get(match["id"])
        return httpx.Response(404, json={"detail": "Not Found"})  # FastAPI's unknown route

    def _create(self, request: httpx.Request) -> httpx.Response:
        try:
            body = json.loads(request.content)
        except ValueError:
            return httpx.Response(422, json={"detail": [{"msg": "body is not JSON"}]})
        self.bodies.append(body)
        if not isinstance(body, dict) or not isinstance(body.get("payload"), str):
            return httpx.Response(422, json={"detail": [{"loc": ["body", "payload"]}]})
        job_id = f"job-{len(self.jobs) + 1}"
        now = "2025-01-01T00:00:00Z"
        self.jobs[job_id] = {
            "id": job_id,
            "status": "queued",
            "result": None,
            "error": None,
            "created_at": now,
            "updated_at": now,
            "_payload": body["payload"],
            "_gets": 0,
        }
        return httpx.Response(202, json={"id": job_id, "status": "queued"})

    def _get(self, job_id: str) -> httpx.Response:
        job = self.jobs.get(job_id)
        if job is None:
            return _error(404, "not_found", f"no job with id {job_id!r}")
        job["_gets"] += 1
        if job["status"] in {"queued", "running"}:
            if job["_gets"] >= self.steps_to_finish:
                if job["_payload"] == "fail":
                    job.update(status="failed", error="payload asked to fail")
                else:
                    job.update(status="succeeded", result=_result(job["_payload"]))
            else:
                job["status"] = "running"
        return httpx.Response(200, json={k: v for k, v in job.items() if not k.startswith("_")})


def _error(status_code: int, error: str, detail: str) -> httpx.Response:
    """The API's own error body: ``{"error": <code>, "detail": <one line>}``."""
    return httpx.Response(status_code, json={"error": error, "detail": detail})


def _result(payload: str) -> dict[str, Any]:
    """What the real worker computes for a payload (boards.jobs.compute_result)."""
    return {
        "characters": len(payload),
        "words": len(payload.split()),
        "sha256": hashlib.sha256(payload.encode("utf-8")).hexdigest(),
    }
