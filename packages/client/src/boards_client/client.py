"""The client: one synchronous httpx session against one boards API."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx

#: Job statuses after which a job never changes again.
FINISHED_STATUSES = frozenset({"succeeded", "failed"})

JOBS_PATH = "/api/v1/jobs"
#: What a bearer token may hold: visible ASCII, so it can never break the header it goes in
#: (an httpx error about a bad header value would quote the token).
_TOKEN = re.compile(r"[!-~]+")


class BoardsError(Exception):
    """The API answered with a non-2xx status (or a body that is not what the API promises)."""

    def __init__(self, status_code: int, body: str, *, method: str = "", url: str = "") -> None:
        self.status_code = status_code
        self.body = body
        self.method = method
        self.url = url
        where = f"{method} {url} " if method or url else ""
        snippet = body if len(body) <= 200 else body[:200] + "..."
        super().__init__(f"{where}answered {status_code}: {snippet}")

    @property
    def code(self) -> str | None:
        """The API's error code (``not_found``, ``broker_unavailable``, ...), when the body has
        the API's error shape ``{"error", "detail", "request_id"}``."""
        return self._field("error")

    @property
    def request_id(self) -> str | None:
        """The id the API logged this request under, when the body has the error shape."""
        return self._field("request_id")

    def _field(self, name: str) -> str | None:
        try:
            data = json.loads(self.body)
        except ValueError:
            return None
        value = data.get(name) if isinstance(data, dict) else None
        return value if isinstance(value, str) else None

    @classmethod
    def from_response(cls, response: httpx.Response) -> BoardsError:
        """The error for an answer the client cannot use, naming the request it answered."""
        return cls(
            response.status_code,
            response.text,
            method=response.request.method,
            url=str(response.url),
        )


@dataclass(frozen=True, slots=True)
class Job:
    """A job as the API reports it."""

    id: str
    status: str
    result: dict[str, Any] | None = None  # the worker's JSON result
    error: str | None = None
    attempts: int | None = None  # deliveries that claimed it so far (None: the API did not say)
    created_at: str | None = None
    updated_at: str | None = None

    @property
    def finished(self) -> bool:
        """Whether the job reached a final status (succeeded or failed)."""
        return self.status in FINISHED_STATUSES

    @classmethod
    def from_api(cls, data: Any) -> Job:
        """Build a Job from a decoded JSON answer; raise ValueError when it has no id/status."""
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object for a job, got {type(data).__name__}")
        job_id, status = data.get("id"), data.get("status")
        if not isinstance(job_id, str) or not isinstance(status, str):
            raise ValueError(f"a job needs string 'id' and 'status', got {data!r}")
        return cls(
            id=job_id,
            status=status,
            result=_optional_object(data.get("result")),
            error=_optional_str(data.get("error")),
            attempts=_optional_int(data.get("attempts")),
            created_at=_optional_str(data.get("created_at")),
            updated_at=_optional_str(data.get("updated_at")),
        )

    def to_dict(self) -> dict[str, Any]:
        """The job as a plain dict (what the CLI prints)."""
        return {
            "id": self.id,
            "status": self.status,
            "result": self.result,
            "error": self.error,
            "attempts": self.attempts,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _optional_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"expected a string or null, got {value!r}")


def _optional_int(value: Any) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise ValueError(f"expected an integer or null, got {value!r}")


def _optional_object(value: Any) -> dict[str, Any] | None:
    if value is None or isinstance(value, dict):
        return value
    raise ValueError(f"expected a JSON object or null for a result, got {value!r}")


class BoardsClient:
    """Synchronous client for the boards API.

    Use it as a context manager so the connection pool is closed::

        with BoardsClient("http://localhost:8800", timeout=5) as client:
            client.health()

    ``token`` is sent as ``Authorization: Bearer <token>`` on every request (an API with
    ``BOARDS_API_TOKENS_FILE`` set needs it); it is never part of an error message or repr.
    ``transport`` is passed to httpx (tests pass the app's own, or ``httpx.MockTransport``).
    """

    def __init__(
        self,
        base_url: str,
        timeout: float = 10.0,
        *,
        transport: httpx.BaseTransport | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        if token is not None and not _TOKEN.fullmatch(token):
            raise ValueError("the API token must be visible ASCII characters, without spaces")
        self.base_url = base_url.rstrip("/")
        auth = {"Authorization": f"Bearer {token}"} if token is not None else {}
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json", **auth, **(headers or {})},
        )

    def __repr__(self) -> str:
        return f"BoardsClient({self.base_url!r})"

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        """Close the underlying connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, path, **kwargs)
        if not response.is_success:
            raise BoardsError.from_response(response)
        return response

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise BoardsError.from_response(response) from exc

    def _json_object(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._request(method, path, **kwargs)
        data = self._json(response)
        if not isinstance(data, dict):
            raise BoardsError.from_response(response)
        return data

    def _job(self, method: str, path: str, **kwargs: Any) -> Job:
        response = self._request(method, path, **kwargs)
        try:
            return Job.from_api(self._json(response))
        except ValueError as exc:
            raise BoardsError.from_response(response) from exc

    # -- health ----------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``GET /health``: liveness, never touches the database."""
        return self._json_object("GET", "/health")

    def system_health(self) -> dict[str, Any]:
        """``GET /api/v1/system/health``: database, broker, migrations and version."""
        return self._json_object("GET", "/api/v1/system/health")

    def ready(self) -> bool:
        """``GET /health/ready``: True on 200, False on 503; other answers raise BoardsError."""
        response = self._http.get("/health/ready")
        if response.status_code == httpx.codes.SERVICE_UNAVAILABLE:
            return False
        if not response.is_success:
            raise BoardsError.from_response(response)
        return True

    # -- jobs ------------------------------------------------------------------------------
    def create_job(
        self, payload: str, delay_seconds: float = 0, *, idempotency_key: str | None = None
    ) -> Job:
        """``POST /api/v1/jobs``: enqueue a job; the API answers 202 with its id.

        With ``idempotency_key``, calling again with the same key (say, after a timeout) returns
        the job the first call created instead of creating a second one.
        """
        if not isinstance(payload, str):
            raise TypeError(f"payload must be a str, got {type(payload).__name__}")
        if delay_seconds < 0:
            raise ValueError(f"delay_seconds must not be negative, got {delay_seconds!r}")
        body: dict[str, Any] = {"payload": payload}
        if delay_seconds:
            body["delay_seconds"] = delay_seconds
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
        return self._job("POST", JOBS_PATH, json=body, headers=headers)

    def get_job(self, job_id: str) -> Job:
        """``GET /api/v1/jobs/{id}``; an unknown id raises BoardsError with status 404."""
        if not job_id or "/" in job_id:
            raise ValueError(f"not a job id: {job_id!r}")
        return self._job("GET", f"{JOBS_PATH}/{job_id}")

    def wait_for_job(
        self,
        job_id: str,
        timeout: float = 30,
        interval: float = 0.2,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Job:
        """Poll a job until it succeeded or failed.

        Raises TimeoutError naming the job and its last status when ``timeout`` seconds pass.
        A failed job is returned, not raised: check ``job.status`` / ``job.error``.
        """
        if timeout <= 0 or interval <= 0:
            raise ValueError("timeout and interval must be positive")
        deadline = clock() + timeout
        while True:
            job = self.get_job(job_id)
            if job.finished:
                return job
            remaining = deadline - clock()
            if remaining <= 0:
                raise TimeoutError(
                    f"job {job_id} still {job.status!r} after {timeout:g} s "
                    f"(waiting for one of: {', '.join(sorted(FINISHED_STATUSES))})"
                )
            sleep(min(interval, remaining))
