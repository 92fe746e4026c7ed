"""The boards-client CLI against the real API (see conftest)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import httpx
import pytest
from boards_client import BoardsClient, cli

CliThrough = Callable[[httpx.BaseTransport], list[str]]
RunCli = Callable[[list[str]], tuple[int, str, str]]
JOB_KEYS = {"id", "status", "result", "error", "attempts", "created_at", "updated_at"}


@pytest.fixture(autouse=True)
def seen_urls(transport: httpx.BaseTransport, cli_through: CliThrough) -> list[str]:
    """Every CLI run talks to the real app; the list records the base URLs it was given."""
    return cli_through(transport)


@pytest.mark.usefixtures("worker_keeps_up")
def test_submit_wait_prints_finished_job(seen_urls: list[str], run_cli: RunCli) -> None:
    code, out, err = run_cli(["submit", "hello", "--url", "http://api:8800", "--wait"])
    assert (code, err) == (0, "")
    job = json.loads(out)
    assert set(job) == JOB_KEYS
    assert (job["status"], job["error"], job["attempts"]) == ("succeeded", None, 1)
    assert job["result"] == {
        "characters": 5,
        "words": 1,
        "sha256": hashlib.sha256(b"hello").hexdigest(),
    }
    assert seen_urls == ["http://api:8800"]


def test_submit_without_wait_prints_queued(
    sent: list[httpx.Request], seen_urls: list[str], run_cli: RunCli
) -> None:
    code, out, _ = run_cli(["submit", "hello", "--delay", "2"])
    assert code == 0
    job = json.loads(out)
    assert job.pop("id")
    assert job == {
        "status": "queued",
        "result": None,
        "error": None,
        "attempts": None,  # the 202 answer says id and status only
        "created_at": None,
        "updated_at": None,
    }
    assert [json.loads(r.content) for r in sent] == [{"payload": "hello", "delay_seconds": 2.0}]
    assert seen_urls == [cli.DEFAULT_URL]


def test_url_from_environment(
    seen_urls: list[str], run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cli.URL_ENV, "http://from-env:1")
    code, out, _ = run_cli(["health"])
    assert code == 0
    assert json.loads(out)["status"] == "ok"
    assert seen_urls == ["http://from-env:1"]


@pytest.mark.usefixtures("worker_keeps_up")
def test_failed_job_exits_1_and_still_prints(run_cli: RunCli) -> None:
    code, out, err = run_cli(["submit", "fail: no ink", "--wait"])
    assert (code, err) == (1, "")
    assert (json.loads(out)["status"], json.loads(out)["error"]) == ("failed", "no ink")


def test_wait_timeout_is_one_line_exit_1(run_cli: RunCli) -> None:
    # No worker: the job stays queued, and --wait gives up after its timeout.
    code, out, err = run_cli(["submit", "slow", "--wait", "--timeout", "0.05"])
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith("boards-client: error: job ")
    assert err.endswith(" still 'queued' after 0.05 s (waiting for one of: failed, succeeded)\n")


def test_get_unknown_job_exits_1(run_cli: RunCli) -> None:
    code, out, err = run_cli(["get", "missing"])
    assert (code, out) == (1, "")
    assert err.startswith("boards-client: error: GET http://localhost:8800/api/v1/jobs/missing ")
    assert "answered 404: " in err and "not_found" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["submit"],
        ["frobnicate"],
        ["submit", "x", "--timeout", "soon"],
        ["submit", "x", "--timeout", "0"],
        ["submit", "x", "--delay", "-1"],
        ["submit", "x", "--delay", "nan"],
        ["submit", "x", "--url", "localhost:8800"],
        ["get", "../health"],
    ],
)
def test_bad_input_is_one_line_exit_2(
    sent: list[httpx.Request], run_cli: RunCli, argv: list[str]
) -> None:
    code, out, err = run_cli(argv)
    assert (code, out) == (2, "")
    assert err.startswith("boards-client: error: ")
    assert err.count("\n") == 1, err
    assert sent == []


def test_unreachable_api_is_one_line_exit_1(
    monkeypatch: pytest.MonkeyPatch, run_cli: RunCli
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    monkeypatch.setattr(
        cli,
        "BoardsClient",
        lambda url, **kw: BoardsClient(url, transport=httpx.MockTransport(refuse), **kw),
    )
    code, _, err = run_cli(["health", "--url", "http://down:1"])
    assert code == 1
    assert (
        err
        == "boards-client: error: cannot reach http://down:1: ConnectError: connection refused\n"
    )
