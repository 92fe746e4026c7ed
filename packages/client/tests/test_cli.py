"""The boards-client CLI against the real API (see conftest)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest
from boards_client import BoardsClient, cli

JOB_KEYS = {"id", "status", "result", "error", "attempts", "created_at", "updated_at"}


@pytest.fixture(autouse=True)
def seen_urls(transport: httpx.BaseTransport, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every CLI run talks to the real app; the list records the base URLs it was given."""
    seen: list[str] = []

    def make(base_url: str, *args: Any, **kwargs: Any) -> BoardsClient:
        seen.append(base_url)
        return BoardsClient(base_url, *args, transport=transport, **kwargs)

    monkeypatch.setattr(cli, "BoardsClient", make)
    return seen


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.usefixtures("worker_keeps_up")
def test_submit_wait_prints_finished_job(
    seen_urls: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["submit", "hello", "--url", "http://api:8800", "--wait"], capsys)
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
    sent: list[httpx.Request], seen_urls: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["submit", "hello", "--delay", "2"], capsys)
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
    seen_urls: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cli.URL_ENV, "http://from-env:1")
    code, out, _ = run(["health"], capsys)
    assert code == 0
    assert json.loads(out)["status"] == "ok"
    assert seen_urls == ["http://from-env:1"]


@pytest.mark.usefixtures("worker_keeps_up")
def test_failed_job_exits_1_and_still_prints(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["submit", "fail: no ink", "--wait"], capsys)
    assert (code, err) == (1, "")
    assert (json.loads(out)["status"], json.loads(out)["error"]) == ("failed", "no ink")


def test_wait_timeout_is_one_line_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    # No worker: the job stays queued, and --wait gives up after its timeout.
    code, out, err = run(["submit", "slow", "--wait", "--timeout", "0.05"], capsys)
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith("boards-client: error: job ")
    assert err.endswith(" still 'queued' after 0.05 s (waiting for one of: failed, succeeded)\n")


def test_get_unknown_job_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["get", "missing"], capsys)
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
    sent: list[httpx.Request], capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run(argv, capsys)
    assert (code, out) == (2, "")
    assert err.startswith("boards-client: error: ")
    assert err.count("\n") == 1, err
    assert sent == []


def test_unreachable_api_is_one_line_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    monkeypatch.setattr(
        cli,
        "BoardsClient",
        lambda url, **kw: BoardsClient(url, transport=httpx.MockTransport(refuse), **kw),
    )
    code, _, err = run(["health", "--url", "http://down:1"], capsys)
    assert code == 1
    assert (
        err
        == "boards-client: error: cannot reach http://down:1: ConnectError: connection refused\n"
    )
