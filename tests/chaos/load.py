"""Driving jobs through the API: concurrent clients that POST job specs and record every answer,
and the database-side view of what became of the jobs that were accepted."""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

JOBS = "/api/v1/jobs"
FINAL = ("succeeded", "failed")
CLIENTS = 32
#: What a response body must never hold: SQL, driver or ORM names, bound parameters, tracebacks.
LEAK = re.compile(
    r"(?i)(\bselect\b.+\bfrom\b|\binsert\s+into\b|\bupdate\s+jobs\b|\[SQL:|\[parameters:|"
    r"psycopg|sqlalchemy|traceback|File \"/)"
)


@dataclass(frozen=True)
class JobSpec:
    payload: str
    delay_seconds: float = 0.0
    idempotency_key: str | None = None

    def request(self) -> tuple[dict[str, Any], dict[str, str]]:
        body: dict[str, Any] = {"payload": self.payload}
        if self.delay_seconds:
            body["delay_seconds"] = self.delay_seconds
        headers = {"Idempotency-Key": self.idempotency_key} if self.idempotency_key else {}
        return body, headers


def job_specs(tag: str, delay_seconds: float = 0.0, keyed: bool = False) -> Iterator[JobSpec]:
    """Jobs without end, with payloads (and keys) unique to this run, so rows can be found by
    payload."""
    run = uuid.uuid4().hex[:8]
    for i in itertools.count():
        yield JobSpec(
            payload=f"chaos {tag} {run} job {i}",
            delay_seconds=delay_seconds,
            idempotency_key=f"chaos-{tag}-{run}-{i}" if keyed else None,
        )


def specs(tag: str, count: int, delay_seconds: float = 0.0, keyed: bool = False) -> list[JobSpec]:
    return list(itertools.islice(job_specs(tag, delay_seconds, keyed), count))


@dataclass
class Answer:
    """What one POST got: a status and body, or the transport error instead."""

    spec: JobSpec
    status: int | None = None
    body: Any = None
    text: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    #: When the request was sent and how long its answer took (monotonic seconds).
    sent_at: float = 0.0
    seconds: float = 0.0

    @property
    def answered_at(self) -> float:
        return self.sent_at + self.seconds

    @property
    def job_id(self) -> str | None:
        return self.body.get("id") if isinstance(self.body, dict) else None


@dataclass
class Batch:
    """Every answer of one load run, appended by the client threads."""

    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)

    def snapshot(self) -> list[Answer]:
        with self.lock:
            return list(self.answers)

    def with_status(self, *statuses: int) -> list[Answer]:
        return [a for a in self.snapshot() if a.status in statuses]

    @property
    def accepted(self) -> list[str]:
        """Ids of the jobs answered 202 (200: a replay of one): each is a promise that it runs."""
        return [a.job_id for a in self.with_status(200, 202) if a.job_id]

    @property
    def refused_payloads(self) -> list[str]:
        """Payloads answered 503: the API promised these will not run."""
        return [a.spec.payload for a in self.with_status(503)]

    def unexpected(self, allowed: Iterable[int] = (202, 503)) -> list[Answer]:
        """Answers with another status, or none at all (connection errors)."""
        allowed = set(allowed)
        return [a for a in self.snapshot() if a.status not in allowed]

    def leaks(self) -> list[Answer]:
        return [a for a in self.snapshot() if LEAK.search(a.text)]


def post_job(client: httpx.Client, base_url: str, spec: JobSpec) -> Answer:
    body, headers = spec.request()
    return send(client, spec, "POST", f"{base_url}{JOBS}", json=body, headers=headers)


def get_answer(client: httpx.Client, base_url: str, job_id: str) -> Answer:
    """A GET of one job, recorded like a POST (its spec names the job; it creates nothing)."""
    return send(client, JobSpec(f"GET {job_id}"), "GET", f"{base_url}{JOBS}/{job_id}")


def send(client: httpx.Client, spec: JobSpec, method: str, url: str, **kwargs: Any) -> Answer:
    answer = Answer(spec, sent_at=time.monotonic())
    try:
        response = client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        answer.error = f"{type(exc).__name__}: {exc}"
        return answer
    finally:
        answer.seconds = time.monotonic() - answer.sent_at
    answer.status, answer.text = response.status_code, response.text
    answer.headers = dict(response.headers)
    with contextlib.suppress(ValueError):
        answer.body = response.json()
    return answer


class Load:
    """``clients`` threads, each with its own keep-alive connection, POSTing specs in order.

    ``base_url`` is read per request, so a restarted API (a new port) is followed.
    """

    def __init__(self, base_url: Callable[[], str], clients: int = CLIENTS, timeout: float = 30):
        self.base_url = base_url
        self.clients = clients
        self.timeout = timeout

    def submit(self, jobs: Iterable[JobSpec]) -> Batch:
        """POST every spec and return when all are answered."""
        with self.running(jobs) as batch:
            pass
        return batch

    def streaming(
        self, tag: str, delay_seconds: float = 0.0
    ) -> contextlib.AbstractContextManager[Batch]:
        """Submissions without end, until the caller leaves the block."""
        return self.running(job_specs(tag, delay_seconds), drain=False)

    def polling(self, job_id: str) -> contextlib.AbstractContextManager[Batch]:
        """GETs of ``job_id`` without end, until the caller leaves the block."""
        return self.running(
            itertools.repeat(JobSpec(job_id)),
            drain=False,
            method=lambda client, base_url, spec: get_answer(client, base_url, spec.payload),
        )

    @contextlib.contextmanager
    def running(
        self,
        jobs: Iterable[JobSpec],
        *,
        drain: bool = True,
        method: Callable[[httpx.Client, str, JobSpec], Answer] = post_job,
    ) -> Iterator[Batch]:
        """POST the specs in the background (or what ``method`` sends for each). On
        leaving the block: with ``drain``, wait until every spec is answered; without, stop
        taking new ones and wait for those in flight."""
        batch, stop, lock = Batch(), threading.Event(), threading.Lock()
        todo = iter(jobs)

        def client_loop() -> None:
            with httpx.Client(timeout=self.timeout) as client:
                while not stop.is_set():
                    with lock:
                        spec = next(todo, None)
                    if spec is None:
                        return
                    batch.add(method(client, self.base_url(), spec))

        threads = [threading.Thread(target=client_loop, daemon=True) for _ in range(self.clients)]
        for thread in threads:
            thread.start()
        try:
            yield batch
            if drain:
                for thread in threads:  # each request is bounded by the client timeout
                    thread.join()
        finally:
            stop.set()
            for thread in threads:
                thread.join()


class Jobs:
    """The database's view of the jobs (the source of truth), read over psycopg."""

    def __init__(self, database_url: Callable[[], str]):
        self.database_url = database_url

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url(), connect_timeout=3) as conn:
            return conn.execute(sql, params).fetchall()

    def statuses(self, ids: list[str]) -> dict[str, str] | None:
        """Each job's status; None while the database does not answer."""
        try:
            rows = self.query("SELECT id, status FROM jobs WHERE id = ANY(%s)", ids)
        except psycopg.Error:
            return None
        return {job_id: status for job_id, status in rows}

    def count(self, ids: list[str], statuses: Iterable[str]) -> int:
        """How many of ``ids`` have one of ``statuses`` (0 while the database is away)."""
        found, wanted = self.statuses(ids) or {}, set(statuses)
        return sum(1 for status in found.values() if status in wanted)

    def all_in(self, ids: list[str], statuses: Iterable[str]) -> bool:
        return self.count(ids, statuses) == len(ids)

    def none_in(self, ids: list[str], statuses: Iterable[str]) -> bool:
        """Every job exists and none has one of ``statuses``."""
        found, wanted = self.statuses(ids), set(statuses)
        return (
            found is not None and len(found) == len(set(ids)) and wanted.isdisjoint(found.values())
        )

    def rows_for(self, payloads: list[str]) -> dict[str, list[tuple[str, str]]]:
        """Per payload, the (id, status) of every row holding it."""
        rows = self.query("SELECT payload, id, status FROM jobs WHERE payload = ANY(%s)", payloads)
        found: dict[str, list[tuple[str, str]]] = {p: [] for p in payloads}
        for payload, job_id, status in rows:
            found[payload].append((job_id, status))
        return found


def summary(answers: list[Answer], examples: int = 3) -> str:
    """How many answers per status (or error), with a few examples: short enough for a failure."""
    counts: dict[str, int] = {}
    for answer in answers:
        key = str(answer.status) if answer.status is not None else (answer.error or "?")[:60]
        counts[key] = counts.get(key, 0) + 1
    shown = [f"{a.spec.payload!r} -> {a.status or a.error}: {a.text[:200]}" for a in answers]
    return f"{len(answers)} answers {counts}; e.g. {shown[:examples]}"
