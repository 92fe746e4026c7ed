"""The boards-client CLI against the documented API shape."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from boards_client import BoardsClient, cli
from boards_client.testing import FakeBoardsApi


@pytest.fixture(autouse=True)
def seen_urls(api: FakeBoardsApi, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every CLI run talks to the `api` fake; the list records the base URLs it was given."""
    seen: list[str] = []

    def make(base_url: str, *args: Any, **kwargs: Any) -> BoardsClient:
        seen.append(base_url)
        return BoardsClient(base_url, *args, transport=api.transport(), **kwargs)

    monkeypatch.setattr(cli, "BoardsClient", make)
    monkeypatch.delenv(cli.URL_ENV, raising=False)
    return seen


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_submit_wait_prints_finished_job(
    seen_urls: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["submit", "hello", "--url", "http://api:8800", "--wait"], capsys)
    assert code == 0, err
    job = json.loads(out)
    assert job["status"] == "succeeded"
    assert job["result"]["words"] == 1
    assert set(job) == {"id", "status", "result", "error", "created_at", "updated_at"}
    assert seen_urls == ["http://api:8800"]


def test_submit_without_wait_prints_queued(
    api: FakeBoardsApi, seen_urls: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["submit", "hello", "--delay", "2"], capsys)
    assert code == 0
    assert json.loads(out)["status"] == "queued"
    assert api.bodies == [{"payload": "hello", "delay_seconds": 2.0}]
    assert seen_urls == [cli.DEFAULT_URL]


def test_url_from_environment(
    seen_urls: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cli.URL_ENV, "http://from-env:1")
    assert run(["health"], capsys)[0] == 0
    assert seen_urls == ["http://from-env:1"]


def test_failed_job_exits_1_and_still_prints(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["submit", "fail", "--wait"], capsys)
    assert code == 1
    assert json.loads(out)["error"] == "payload asked to fail"


def test_wait_timeout_is_one_line_exit_1(
    api: FakeBoardsApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.steps_to_finish = 10**9
    code, out, err = run(["submit", "slow", "--wait", "--timeout", "0.05"], capsys)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("boards-client: error: job job-1 still")


def test_get_unknown_job_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["get", "missing"], capsys)
    assert code == 1
    assert "404" in err and err.count("\n") == 1


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
    api: FakeBoardsApi, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2
    assert out == ""
    assert err.startswith("boards-client: error: ")
    assert err.count("\n") == 1, err
    assert api.requests == []


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
