"""Phase 2, faults, one at a time on the running stack: every job answered 202 reaches `succeeded`
or `failed` within the bounds of docs/operations.md, a 503 never runs later, and no answer is a
500 or shows our internals."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest
from boards_testing.waiting import wait_for

from tests.chaos.load import FINAL, Answer, Batch, Jobs, JobSpec, Load, specs, summary
from tests.chaos.recorder import Recorder, Row
from tests.chaos.stack import Stack, backend_connections

#: The documented bounds (docs/operations.md): jobs lost with Redis are re-enqueued within 30 s
#: of Redis answering again; a killed worker's jobs are running again within 30 s.
BOUND = 30.0
#: Once re-delivered, the jobs (at most 3 s of work each) are final within this much more.
FINISH = 30.0
REFUSED_ERRORS = {"broker_unavailable", "database_unavailable"}


# -- shared checks -------------------------------------------------------------------------------


def check_answers(batch: Batch, allowed: tuple[int, ...] = (202,)) -> None:
    """Only ``allowed`` statuses, a 503 in the JSON error shape, and no internals anywhere."""
    unexpected = batch.unexpected(allowed)
    assert not unexpected, f"answers other than {allowed}: {summary(unexpected)}"
    leaks = batch.leaks()
    assert not leaks, f"internals in response bodies: {summary(leaks)}"
    for answer in batch.with_status(503):
        body = answer.body if isinstance(answer.body, dict) else {}
        assert body.get("error") in REFUSED_ERRORS and isinstance(body.get("detail"), str), (
            f"a 503 without the JSON error shape: {answer.text[:300]}"
        )


def check_refused_never_run(jobs: Jobs, batch: Batch) -> None:
    """A 503 promises the job will not run: no row of a refused payload may be other than failed
    (checked once everything else is final, so a wrongly queued row would have run by now)."""
    refused = batch.refused_payloads
    if refused:
        ran = {
            p: rows
            for p, rows in jobs.rows_for(refused).items()
            if any(status != "failed" for _, status in rows)
        }
        assert not ran, f"{len(ran)} jobs answered 503 have rows that run: {list(ran.items())[:3]}"


@dataclass
class Phase:
    """One fault's jobs: the row of the table, and every batch of answers with the statuses
    allowed for it, checked once the jobs are final (so the table says how the jobs ended even
    when an answer was wrong)."""

    row: Row
    load: Load
    jobs: Jobs
    batches: list[tuple[Batch, tuple[int, ...]]] = field(default_factory=list)

    def submit(self, jobs_to_send: Iterable[JobSpec], allowed: tuple[int, ...] = (202,)) -> Batch:
        """POST and wait for the answers; the accepted jobs join the phase's promises."""
        return self.add(self.load.submit(jobs_to_send), allowed)

    def add(self, batch: Batch, allowed: tuple[int, ...]) -> Batch:
        self.row.ids += [job_id for job_id in batch.accepted if job_id not in self.row.ids]
        self.batches.append((batch, allowed))
        return batch

    def check(self) -> None:
        for batch, allowed in self.batches:
            check_answers(batch, allowed)
            check_refused_never_run(self.jobs, batch)


Fault = Callable[[str], contextlib.AbstractContextManager[Phase]]


#: Lines of each backend container's log shown with a failed fault (what the product said).
LOG_LINES = 150


@pytest.fixture
def fault(
    stack: Stack, load: Load, jobs: Jobs, recorder: Recorder, request: pytest.FixtureRequest
) -> Fault:
    """``with fault(name) as phase:`` a row in the table, the answers checked at the end; a
    failure comes with the end of the backend's logs."""

    @contextlib.contextmanager
    def run(name: str) -> Iterator[Phase]:
        try:
            with recorder.phase(name, stack, jobs) as row:
                phase = Phase(row, load, jobs)
                yield phase
                phase.check()
        except BaseException:
            for service in (stack.api, *stack.workers):
                with contextlib.suppress(Exception):  # a log we cannot read: the failure stands
                    lines = service.docker.logs(tail=LOG_LINES * 4).decode(errors="replace")
                    shown = [line for line in lines.splitlines() if "GET /health" not in line]
                    request.node.add_report_section(
                        "call", f"{service.name} log", "\n".join(shown[-LOG_LINES:])
                    )
            raise

    return run


def settle(row: Row, jobs: Jobs, *, since: float) -> None:
    """The bound for queue losses: none of the row's jobs left `queued` BOUND seconds after the
    fault is over, then all final."""
    row.wait(
        "re-enqueued (none queued)",
        lambda: jobs.none_in(row.ids, ["queued"]),
        since=since,
        bound=BOUND,
    )
    finish(row, jobs, since=since)


def finish(
    row: Row, jobs: Jobs, *, since: float, bound: float = BOUND + FINISH, recovery: bool = True
) -> None:
    row.wait(
        "all final",
        lambda: jobs.all_in(row.ids, FINAL),
        since=since,
        bound=bound,
        recovery=recovery,
    )


def get_job(stack: Stack, job_id: str) -> dict[str, Any]:
    response = httpx.get(f"{stack.api_url}/api/v1/jobs/{job_id}", timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


# -- the faults ----------------------------------------------------------------------------------


@contextlib.contextmanager
def backlog(
    stack: Stack, phase: Phase, name: str, count: int, delay_seconds: float
) -> Iterator[int]:
    """`count` jobs in the workers' hands, then `count` more waiting in Redis: the workers are
    paused (docker pause: they fetch nothing) while the block runs. Yields the messages queued."""
    phase.submit(specs(f"{name}-running", count, delay_seconds=delay_seconds))
    for worker in stack.workers:
        worker.pause()
    try:
        phase.submit(specs(f"{name}-queued", count, delay_seconds=delay_seconds))
        yield stack.queued_messages()
    finally:
        for worker in stack.workers:
            worker.unpause()


def accepted_more(batch: Batch, count: int, *, after: str) -> None:
    """The stream goes on: ``count`` more of its jobs accepted from now, within 30 s."""
    before = len(batch.accepted)
    wait_for(
        lambda: len(batch.accepted) >= before + count,
        timeout=30,
        what=f"{count} more jobs accepted after {after}",
    )


def test_redis_killed_after_jobs_accepted(stack: Stack, jobs: Jobs, fault: Fault) -> None:
    with fault("a. Redis SIGKILL after 120 jobs") as phase:
        with backlog(stack, phase, "redis-kill", 60, delay_seconds=0.5) as queued:
            stack.redis.kill()
        # With no broker the API answers at once: 503 (nothing stored) or 202 (it will run).
        phase.submit(specs("redis-down", 8), allowed=(202, 503))
        stack.redis.start()
        stack.redis.wait_ready()
        answering = time.monotonic()
        phase.row.notes.append(
            f"{queued} messages queued at the kill, {stack.queued_messages()} after the restart"
        )
        settle(phase.row, jobs, since=answering)


def test_redis_flushed_after_jobs_accepted(stack: Stack, jobs: Jobs, fault: Fault) -> None:
    with fault("b. Redis FLUSHALL after 240 jobs") as phase:
        with (
            backlog(stack, phase, "flushall", 120, delay_seconds=1) as queued,
            stack.redis_client() as client,
        ):
            client.flushall()
        flushed = time.monotonic()
        phase.row.notes.append(f"{queued} queued messages flushed")
        assert queued >= 120, "the fault needs messages waiting in Redis"
        settle(phase.row, jobs, since=flushed)


def test_worker_killed_with_jobs_in_flight(stack: Stack, jobs: Jobs, fault: Fault) -> None:
    victim, other = stack.workers
    with fault("c. worker SIGKILL, 20 jobs in flight") as phase:
        ids = phase.row.ids
        other.stop()  # so the victim holds every job in flight
        phase.submit(specs("worker-kill", 20, delay_seconds=3))
        wait_for(
            lambda: jobs.all_in(ids, ["running"]), timeout=30, what="20 jobs running on one worker"
        )
        victim.kill()
        killed = time.monotonic()
        assert jobs.all_in(ids, ["running"]), "the jobs must still be in flight at the kill"
        other.start()  # as a restart policy would: both replicas back
        victim.start()

        def running_again() -> bool:
            """Every job final, or running in a second attempt."""
            for job in (get_job(stack, job_id) for job_id in ids):
                again = job["status"] == "running" and (job.get("attempts") or 1) > 1
                if job["status"] not in FINAL and not again:
                    return False
            return True

        phase.row.wait("running again", running_again, since=killed, bound=BOUND)
        finish(phase.row, jobs, since=killed)
        first_only = [i for i in ids if (get_job(stack, i).get("attempts") or 1) < 2]
        assert not first_only, f"{len(first_only)} jobs were not run again after the kill"


def test_api_killed_between_commit_and_enqueue(
    stack: Stack, load: Load, jobs: Jobs, fault: Fault
) -> None:
    keyed = specs("api-kill", 16, keyed=True)
    payloads = [spec.payload for spec in keyed]
    # Half the clients retry with the same key; the other half never come back, so their rows
    # are the reconciler's to finish.
    retrying = keyed[:8]
    ((started_at,),) = jobs.query("SELECT now()")
    with fault("d. API SIGKILL between commit and enqueue") as phase:
        stack.redis.pause()  # the API's enqueue hangs after the commit
        try:
            with load.running(keyed) as cut_off:
                # The API may refuse before committing; the checks below hold either way.
                with contextlib.suppress(pytest.fail.Exception):
                    wait_for(
                        lambda: all(jobs.rows_for(payloads).values()),
                        timeout=10,
                        what="the requests' rows committed",
                    )
                stack.api.kill()
        finally:
            stack.redis.unpause()
        orphans = [job_id for rows in jobs.rows_for(payloads).values() for job_id, _ in rows]
        phase.row.notes.append(
            f"{len(orphans)} of {len(keyed)} rows committed when the API died, "
            f"{len(cut_off.unexpected(allowed=()))} requests cut off, {len(retrying)} retried"
        )
        stack.start_api()
        restarted = time.monotonic()
        retried = phase.submit(retrying, allowed=(200, 202))  # the same keys, the same bodies
        replayed = phase.submit(retrying, allowed=(200, 202))
        phase.row.ids += [job_id for job_id in orphans if job_id not in phase.row.ids]

        first = {a.spec.payload: a.job_id for a in retried.snapshot()}
        assert {a.spec.payload: a.job_id for a in replayed.snapshot()} == first, (
            "a replay with the same key must answer the same job"
        )
        unmarked = [
            a.spec.payload
            for a in replayed.snapshot()
            if a.headers.get("idempotent-replayed") != "true"
        ]
        assert not unmarked, f"replays without `Idempotent-Replayed: true`: {unmarked[:3]}"
        rows = jobs.rows_for(list(first))
        assert {p: [job_id for job_id, _ in r] for p, r in rows.items()} == {
            p: [job_id] for p, job_id in first.items()
        }, "each key must yield exactly one job"

        unfinished = (  # this phase's rows, also those no client ever got an id for
            "SELECT count(*) FROM jobs WHERE status NOT IN ('succeeded', 'failed')"
            " AND created_at >= %s"
        )
        phase.row.wait(
            "no unfinished row",
            lambda: jobs.query(unfinished, started_at) == [(0,)],
            since=restarted,
            bound=BOUND,
        )
        finish(phase.row, jobs, since=restarted, bound=BOUND)


def test_postgres_restarted_under_load(stack: Stack, load: Load, jobs: Jobs, fault: Fault) -> None:
    with fault("e. PostgreSQL restart under load") as phase:
        batch = Batch()
        try:
            with load.streaming("pg-restart", delay_seconds=0.2) as batch:
                wait_for(lambda: len(batch.accepted) >= 50, timeout=30, what="50 jobs accepted")
                stack.postgres.restart()
                stack.postgres.wait_ready()
                back = time.monotonic()
                accepted_more(batch, 50, after="the restart")
        finally:  # the whole stream, once it stopped
            phase.add(batch, allowed=(202, 503))
        phase.row.notes.append(f"{len(batch.with_status(503))} answered 503 during the outage")
        finish(phase.row, jobs, since=back)


def test_postgres_connections_terminated_under_load(
    stack: Stack, load: Load, jobs: Jobs, fault: Fault
) -> None:
    with fault("f. every PostgreSQL connection terminated under load, twice") as phase:
        batch, terminated = Batch(), []
        try:
            with load.streaming("pg-terminate", delay_seconds=1) as batch:
                wait_for(
                    lambda: jobs.count(batch.accepted, ["running"]) >= 20,
                    timeout=30,
                    what="20 jobs running",
                )
                terminated.append(stack.terminate_backends())
                # Again once the backend has connected anew: its reconnects are cut too.
                wait_for(lambda: stack.backends() > 0, timeout=10, what="the backend reconnected")
                terminated.append(stack.terminate_backends())
                done = time.monotonic()
                accepted_more(batch, 50, after="the terminations")
        finally:  # the whole stream, once it stopped
            phase.add(batch, allowed=(202, 503))
        phase.row.notes.append(
            f"{' + '.join(map(str, terminated))} connections terminated, "
            f"{len(batch.with_status(503))} POSTs answered 503"
        )
        assert terminated and terminated[0] > 0, "the fault needs connections to terminate"
        finish(phase.row, jobs, since=done)


def accepted_again(row: Row, posts: Batch, *, since: float) -> None:
    """The recovery of a database fault: a POST sent after ``since`` (the fault's end) answered
    202 within RECOVER_BOUND."""
    row.wait(
        "a POST sent after the release answers 202",
        lambda: any(a.status == 202 and a.sent_at >= since for a in posts.snapshot()),
        since=since,
        bound=RECOVER_BOUND,
        recovery=True,
    )


#: BOARDS_DATABASE_STATEMENT_TIMEOUT as shipped: a statement waiting on a lock fails after this.
STATEMENT_TIMEOUT = 5.0
#: The backend's pool_timeout (boards.db: CONNECT_TIMEOUT + 2): the longest wait for a pooled
#: connection when every one is held by a stuck statement.
POOL_TIMEOUT = 5.0
#: The request's own work on a machine shared with the rest of the stack.
ANSWER_MARGIN = 2.0
#: The longest any request may take while the database is locked or out of connections.
ANSWER_BOUND = STATEMENT_TIMEOUT + POOL_TIMEOUT + ANSWER_MARGIN
#: How long the fault holds the jobs table locked, and the clients that POST (and GET) meanwhile:
#: more than the API's pool, so some requests wait for a connection too.
LOCK_SECONDS = 15
LOCK_CLIENTS = 8
#: POSTs answer 202 again this soon after the lock is released (a statement already waiting
#: runs at once; one that timed out left only its connection, which is reused).
RECOVER_BOUND = STATEMENT_TIMEOUT + ANSWER_MARGIN


def slow(answers: list[Answer], bound: float = ANSWER_BOUND) -> list[Answer]:
    return [a for a in answers if a.seconds > bound]


def test_jobs_table_locked(stack: Stack, jobs: Jobs, fault: Fault) -> None:
    posting = Load(lambda: stack.api_url, clients=LOCK_CLIENTS)
    reading = Load(lambda: stack.api_url, clients=1)
    with fault(f"g. jobs table locked {LOCK_SECONDS} s (ACCESS EXCLUSIVE)") as phase:
        (existing,) = phase.submit(specs("pg-lock-existing", 1)).accepted
        posts = gets = Batch()
        try:
            with psycopg.connect(stack.database_url, connect_timeout=3) as lock:
                lock.execute("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE")
                with posting.streaming("pg-lock") as posts, reading.polling(existing) as gets:
                    time.sleep(LOCK_SECONDS)  # holding the lock is the fault
                    released = time.monotonic()
                    lock.commit()
                    accepted_again(phase.row, posts, since=released)
        finally:
            phase.add(posts, allowed=(202, 503))
        during = [a for a in posts.snapshot() + gets.snapshot() if a.sent_at < released]
        phase.row.notes.append(
            f"during the lock: {summary(during, examples=0).split(';')[0]}, slowest "
            f"{max((a.seconds for a in during), default=0):.1f} s (<= {ANSWER_BOUND:.0f} s)"
        )
        late = slow(posts.snapshot() + gets.snapshot())
        assert not late, f"answers slower than {ANSWER_BOUND:.0f} s: {summary(late)}"
        early = [a for a in posts.with_status(202) if a.answered_at < released]
        assert not early, f"202 while the table was locked: {summary(early)}"
        assert posts.with_status(503), "POSTs behind the lock must be refused (503), not held"
        check_answers(gets, allowed=(200, 503))
        finish(phase.row, jobs, since=released, recovery=False)


#: More connections than the stand-in's max_connections (PostgreSQL's default, 100): a fill that
#: is never refused is a mistake of the test, not an endless loop.
MAX_HOGS = 200
#: POST answers collected while the server is full.
FULL_ANSWERS = 8


def occupy(url: str, hogs: list[psycopg.Connection[Any]]) -> None:
    """Open connections until PostgreSQL refuses the next one ("too many clients")."""
    while len(hogs) < MAX_HOGS:
        try:
            hogs.append(psycopg.connect(url, connect_timeout=3, autocommit=True))
        except psycopg.OperationalError as exc:
            if "too many clients" in str(exc):
                return
            raise
    pytest.fail(f"PostgreSQL took {MAX_HOGS} connections without refusing one")


def test_postgres_connections_exhausted(stack: Stack, jobs: Jobs, fault: Fault) -> None:
    posting = Load(lambda: stack.api_url, clients=LOCK_CLIENTS)
    with fault("h. PostgreSQL out of connections, the backend's terminated") as phase:
        hogs: list[psycopg.Connection[Any]] = []
        posts = Batch()
        try:
            occupy(stack.database_url, hogs)
            admin = hogs[0]

            def backend_cut_off() -> bool:
                """The backend's connections gone (pg_terminate_backend waits up to 5 s for each
                to exit) and their slots taken before it reconnects."""
                admin.execute(
                    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
                    " WHERE application_name LIKE 'boards-%' AND datname = current_database()"
                )
                occupy(stack.database_url, hogs)
                return backend_connections(admin) == 0

            wait_for(backend_cut_off, timeout=20, what="the backend's connections taken")
            phase.row.notes.append(f"{len(hogs)} connections held by the test")
            with posting.streaming("pg-full") as posts:
                wait_for(
                    lambda: len(posts.snapshot()) >= FULL_ANSWERS,
                    timeout=ANSWER_BOUND * 2,
                    what=f"{FULL_ANSWERS} POSTs answered with the server full",
                )
                full = posts.snapshot()
                released = time.monotonic()
                for hog in hogs:
                    hog.close()
                accepted_again(phase.row, posts, since=released)
        finally:
            for hog in hogs:
                hog.close()
            phase.add(posts, allowed=(202, 503))
        phase.row.notes.append(
            f"server full: {summary(full, examples=0).split(';')[0]}, slowest "
            f"{max((a.seconds for a in full), default=0):.1f} s (<= {ANSWER_BOUND:.0f} s)"
        )
        late = slow(posts.snapshot())
        assert not late, f"answers slower than {ANSWER_BOUND:.0f} s: {summary(late)}"
        assert all(a.status == 503 for a in full), (
            f"with no connection to be had, POSTs must be refused: {summary(full)}"
        )
        finish(phase.row, jobs, since=released, recovery=False)


#: Worker kills in a row, each while the worker holds every job of the phase.
KILLS = 3


def test_worker_killed_repeatedly(stack: Stack, jobs: Jobs, fault: Fault) -> None:
    victim, other = stack.workers
    with fault(f"i. worker SIGKILL {KILLS} times in a row, 20 jobs in flight") as phase:
        ids = phase.row.ids
        attempts_sql = "SELECT id, status, attempts, error FROM jobs WHERE id = ANY(%s)"

        def in_attempt(attempt: int) -> bool:
            """Every job running in its ``attempt``-th claim, or already final."""
            rows = jobs.query(attempts_sql, ids)
            return len(rows) == len(ids) and all(
                status in FINAL or (status == "running" and tries == attempt)
                for _, status, tries, _ in rows
            )

        other.stop()  # so the victim holds every job in flight
        phase.submit(specs("worker-kills", 20, delay_seconds=8))
        since, at_kill = time.monotonic(), list[list[str]]()
        for kill in range(1, KILLS + 1):
            what = "20 jobs running" if kill == 1 else f"running again after kill {kill - 1}"
            phase.row.wait(what, functools.partial(in_attempt, kill), since=since, bound=BOUND)
            victim.kill()
            since = time.monotonic()
            # The jobs whose lease this kill lost (a dead worker's rows stay `running`).
            at_kill.append(
                [i for i, status, _, _ in jobs.query(attempts_sql, ids) if status == "running"]
            )
            assert at_kill[-1], f"jobs must be in flight at kill {kill}"
            victim.start()  # as a restart policy would
        other.start()
        finish(phase.row, jobs, since=since)
        rows = {
            i: (status, tries, error) for i, status, tries, error in jobs.query(attempts_sql, ids)
        }
        not_again = [
            (kill, i) for kill, held in enumerate(at_kill, 1) for i in held if rows[i][1] <= kill
        ]
        assert not not_again, (
            f"jobs not claimed again after the kill that lost them: {not_again[:5]}"
        )
        gave_up = [i for i, (status, _, error) in rows.items() if "gave up" in (error or "")]
        tries = sorted(t for _, t, _ in rows.values())
        phase.row.notes.append(
            f"{sum(len(held) for held in at_kill)} leases lost over {KILLS} kills, attempts "
            f"{tries[0]}..{tries[-1]}, {len(gave_up)} failed 'gave up'"
        )


def test_workers_and_redis_killed_together(stack: Stack, jobs: Jobs, fault: Fault) -> None:
    with fault("j. both workers and Redis SIGKILL at once, 150 jobs") as phase:
        ids = phase.row.ids
        phase.submit(specs("all-killed", 150, delay_seconds=4))
        wait_for(lambda: jobs.count(ids, ["running"]) >= 50, timeout=30, what="50 jobs running")
        queued = stack.queued_messages()
        stack.kill_together(stack.redis, *stack.workers)
        counts = dict(
            jobs.query("SELECT status, count(*) FROM jobs WHERE id = ANY(%s) GROUP BY 1", ids)
        )
        # No broker: the API refuses (503, nothing stored) or accepts what the reconciler sends.
        phase.submit(specs("all-killed-down", 8), allowed=(202, 503))
        stack.redis.start()
        stack.redis.wait_ready()
        answering = time.monotonic()
        for worker in stack.workers:
            worker.start()
        phase.row.notes.append(
            f"at the kill {counts.get('running', 0)} running, {counts.get('queued', 0)} queued "
            f"({queued} messages in Redis), {stack.queued_messages()} after the restart"
        )
        settle(phase.row, jobs, since=answering)
