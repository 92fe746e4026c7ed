"""Bearer tokens: the client and CLI send them, never show them; the fake refuses as the real
app with BOARDS_API_TOKENS_FILE does (see conftest)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from boards_client import BoardsClient, BoardsError, cli
from boards_client.testing import FakeBoardsApi

BASE_URL = "http://boards.test"
StartApi = Callable[..., httpx.BaseTransport]
CliThrough = Callable[[httpx.BaseTransport], list[str]]
RunCli = Callable[[list[str]], tuple[int, str, str]]

TOKEN = "client-s3cret-0123456789abcdef"
WRONG = "wrong-s3cret-0123456789abcdef"


@pytest.fixture
def secured(start_api: StartApi, migrated_sqlite_url: str, tmp_path: Path) -> httpx.BaseTransport:
    """The real app with a token file holding TOKEN (no broker: jobs are not needed here)."""
    path = tmp_path / "tokens"
    path.write_text(TOKEN + "\n")
    return start_api(database_url=migrated_sqlite_url, redis_url=None, api_tokens_file=path)


@pytest.fixture(params=["real", "fake"])
def either(request: pytest.FixtureRequest) -> httpx.BaseTransport:
    if request.param == "fake":
        return FakeBoardsApi(tokens=frozenset({TOKEN})).transport()
    transport: httpx.BaseTransport = request.getfixturevalue("secured")
    return transport


def refusal(transport: httpx.BaseTransport, token: str | None) -> BoardsError:
    with (
        BoardsClient(BASE_URL, transport=transport, token=token) as client,
        pytest.raises(BoardsError) as caught,
    ):
        client.system_health()
    return caught.value


def test_the_client_sends_its_token(either: httpx.BaseTransport) -> None:
    with BoardsClient(BASE_URL, transport=either, token=TOKEN) as client:
        assert client.system_health()["status"] in ("ok", "degraded")
        with pytest.raises(BoardsError) as caught:
            client.get_job("00000000-0000-0000-0000-000000000000")
        assert caught.value.code == "not_found"  # past the token check


@pytest.mark.parametrize(
    ("token", "detail", "challenge"),
    [
        (None, "send Authorization: Bearer <token>", 'Bearer realm="boards"'),
        (WRONG, "the bearer token is not valid", 'Bearer realm="boards", error="invalid_token"'),
    ],
)
def test_no_or_a_wrong_token_is_401_unauthorized(
    either: httpx.BaseTransport, token: str | None, detail: str, challenge: str
) -> None:
    with httpx.Client(base_url=BASE_URL, transport=either) as http:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = http.get("/api/v1/system/health", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == challenge
    body = response.json()
    assert body == {"error": "unauthorized", "detail": detail, "request_id": body["request_id"]}
    assert body["request_id"] == response.headers["x-request-id"]
    error = refusal(either, token)
    assert (error.status_code, error.code) == (401, "unauthorized")
    assert WRONG not in str(error)


def test_probes_need_no_token(either: httpx.BaseTransport) -> None:
    with BoardsClient(BASE_URL, transport=either) as client:
        assert client.health() == {"status": "ok"}
        assert isinstance(client.ready(), bool)


@pytest.mark.parametrize("token", ["", "has space-0123456789", "new\nline-0123456789", "é"])
def test_a_token_that_cannot_be_a_header_is_refused_without_being_shown(token: str) -> None:
    with pytest.raises(ValueError, match="visible ASCII") as caught:
        BoardsClient(BASE_URL, token=token)
    assert token not in str(caught.value) or not token


def test_the_token_is_not_in_the_client_repr() -> None:
    with BoardsClient(BASE_URL, token=TOKEN) as client:
        assert TOKEN not in repr(client)
        assert TOKEN not in repr(client._http.headers)  # httpx masks Authorization


# -- the CLI -------------------------------------------------------------------------------------


@pytest.fixture
def cli_on_secured(secured: httpx.BaseTransport, cli_through: CliThrough) -> None:
    cli_through(secured)


@pytest.mark.usefixtures("cli_on_secured")
def test_cli_token_from_the_option_or_the_environment(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run_cli(["health", "--token", TOKEN])
    assert (code, err) == (0, "")
    monkeypatch.setenv(cli.TOKEN_ENV, TOKEN)
    code, out, err = run_cli(["health"])
    assert (code, err) == (0, "")
    assert TOKEN not in out


@pytest.mark.usefixtures("cli_on_secured")
def test_cli_without_or_with_a_wrong_token_exits_1_without_showing_it(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cli.TOKEN_ENV, "")  # empty counts as unset
    code, out, err = run_cli(["get", "00000000-0000-0000-0000-000000000000"])
    assert (code, out) == (1, "")
    assert "answered 401" in err and "unauthorized" in err
    code, out, err = run_cli(["submit", "x", "--token", WRONG])
    assert (code, out) == (1, "")
    assert "answered 401" in err
    assert WRONG not in err
    code, _, err = run_cli(["health", "--token", "bad token-0123456789"])
    assert code == 2
    assert err.count("\n") == 1 and "bad token" not in err


def test_cli_help_names_the_token_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["health", "--help"])
    assert "$BOARDS_API_TOKEN" in capsys.readouterr().out
