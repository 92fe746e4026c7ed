"""The client's tests run against the real boards API: ``boards.api.factory.create_app`` on a
migrated SQLite file and the session's Redis (the boards_testing plugin's ``redis_url``), called
in-process through Starlette's ASGI transport. The worker's part is played on demand by
``boards.jobs.run_job`` (what the worker's actor calls): a test says when jobs run instead of
waiting for a worker on the wall clock."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from boards.api.factory import create_app
from boards.db import Database, get_database
from boards.jobs import run_job
from boards.migrations import upgrade_to_head
from boards.queue import held_job_ids, redis_broker
from boards.settings import default_alembic_ini, load_settings
from boards_client import BoardsClient, cli
from fastapi.testclient import TestClient

BASE_URL = "http://boards.test"
StartApi = Callable[..., httpx.BaseTransport]
Work = Callable[[], list[str]]
CliThrough = Callable[[httpx.BaseTransport], list[str]]
RunCli = Callable[[list[str]], tuple[int, str, str]]


class RecordingTransport(httpx.BaseTransport):
    """Passes requests on to ``inner`` and keeps them, so a test can read what the client sent.
    ``before_job_read``, when set, runs before each ``GET /api/v1/jobs/...``."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []
        self.before_job_read: Callable[[], object] | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if (
            self.before_job_read is not None
            and request.method == "GET"
            and request.url.path.startswith("/api/v1/jobs/")
        ):
            self.before_job_read()
        return self.inner.handle_request(request)


@pytest.fixture(autouse=True)
def _no_boards_variables(no_boards_settings: None) -> None:
    """No BOARDS_* variable of the caller's shell reaches the app's settings or the CLI."""


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections: bound, never listening, held for the test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    (tmp_path / "data").mkdir()
    return f"sqlite:///{tmp_path / 'data' / 'boards.db'}"


@pytest.fixture
def migrated_sqlite_url(sqlite_url: str) -> str:
    upgrade_to_head(sqlite_url, default_alembic_ini())
    return sqlite_url


@pytest.fixture
def start_api(tmp_path: Path) -> Iterator[StartApi]:
    """``start_api(database_url=..., redis_url=..., api_tokens_file=None)``: a real app with its
    lifespan running, as the transport to give BoardsClient (a RecordingTransport)."""
    running: list[TestClient] = []

    def start(
        *, database_url: str, redis_url: str | None, api_tokens_file: Path | None = None
    ) -> RecordingTransport:
        settings = load_settings(
            api=True,
            database_url=database_url,
            redis_url=redis_url,
            data_dir=tmp_path / "data",
            run_dir=tmp_path / "run",
            api_tokens_file=api_tokens_file,
        )
        app_client = TestClient(create_app(settings), base_url=BASE_URL)
        app_client.__enter__()  # runs the app's lifespan, as uvicorn would
        running.append(app_client)
        # Starlette's ASGI transport without its httpx client: BoardsClient brings its own.
        return RecordingTransport(app_client._transport)

    yield start
    for app_client in reversed(running):
        app_client.__exit__(None, None, None)


@pytest.fixture
def transport(
    start_api: StartApi, migrated_sqlite_url: str, clean_redis_url: str
) -> RecordingTransport:
    """The real app on a migrated SQLite database and the session's Redis."""
    started = start_api(database_url=migrated_sqlite_url, redis_url=clean_redis_url)
    assert isinstance(started, RecordingTransport)
    return started


@pytest.fixture
def sent(transport: RecordingTransport) -> list[httpx.Request]:
    """Every request the client sent to the app, in order."""
    return transport.requests


@pytest.fixture
def database(migrated_sqlite_url: str) -> Database:
    """The app's database, to check what the client's requests stored."""
    return get_database(migrated_sqlite_url)


@pytest.fixture
def work(database: Database, clean_redis_url: str) -> Work:
    """Play the worker once: run every job Redis holds a message for (delays skipped), and
    return what each run ended in. A message for a finished job finds nothing to claim."""

    def run_pending() -> list[str]:
        broker = redis_broker(clean_redis_url)
        try:
            pending = sorted(held_job_ids(broker))
        finally:
            broker.client.close()
        return [run_job(database, job_id, lease=15, sleep=lambda _: None) for job_id in pending]

    return run_pending


@pytest.fixture
def worker_keeps_up(transport: RecordingTransport, work: Work) -> None:
    """Jobs run before each read of a job, as if a fast worker were running beside the API."""
    transport.before_job_read = work


@pytest.fixture
def client(transport: RecordingTransport) -> Iterator[BoardsClient]:
    with BoardsClient(BASE_URL, timeout=5, transport=transport) as c:
        yield c


@pytest.fixture
def cli_through(monkeypatch: pytest.MonkeyPatch) -> CliThrough:
    """``cli_through(transport)``: the CLI's clients send through ``transport`` from now on; the
    list returned records the base URL of each client the CLI made."""

    def route(transport: httpx.BaseTransport) -> list[str]:
        seen: list[str] = []

        def make(base_url: str, *args: Any, **kwargs: Any) -> BoardsClient:
            seen.append(base_url)
            return BoardsClient(base_url, *args, transport=transport, **kwargs)

        monkeypatch.setattr(cli, "BoardsClient", make)
        return seen

    return route


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> RunCli:
    """``run_cli(argv)``: the CLI's exit code, stdout and stderr."""

    def run(argv: list[str]) -> tuple[int, str, str]:
        code = cli.main(argv)
        out, err = capsys.readouterr()
        return code, out, err

    return run
