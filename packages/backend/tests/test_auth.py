"""Bearer tokens (BOARDS_API_TOKENS_FILE): the file, the settings check, the 401s, rotation."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from boards import tokens as tokens_module
from boards.api.factory import create_app
from boards.settings import Settings, SettingsError, load_settings
from boards.tokens import TokenFile, TokenFileError, parse_tokens, read_tokens
from boards_testing.processes import base_env
from fastapi.testclient import TestClient

MakeSettings = Callable[..., Settings]

TOKEN = "s3cret-token-one-0123456789"
OTHER = "s3cret-token-two-0123456789"
WRONG = "not-a-configured-token-000"


def sha256_line(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def rewrite(path: Path, text: str) -> None:
    """Change the file so its stamp changes even where mtimes are coarse (size may not)."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(f"# the API's tokens\n\n{TOKEN}\n")
    return path


@pytest.fixture
def client(
    make_settings: MakeSettings, migrated_sqlite_url: str, token_file: Path
) -> Iterator[TestClient]:
    settings = make_settings(database_url=migrated_sqlite_url, api_tokens_file=token_file)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def failures(client: TestClient, reason: str) -> float:
    app = client.app
    value = app.state.services.metrics.registry.get_sample_value(  # type: ignore[attr-defined]
        "boards_auth_failures_total", {"reason": reason}
    )
    return float(value or 0)


# -- the file ------------------------------------------------------------------------------------


def test_tokens_and_digests_are_read_comments_and_blanks_skipped() -> None:
    parsed = parse_tokens(f"# comment\n\n  {TOKEN}  \n{sha256_line(OTHER)}\n")
    assert parsed == {hashlib.sha256(t.encode()).digest() for t in (TOKEN, OTHER)}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "holds no token"),
        ("# only a comment\n\n", "holds no token"),
        (f"{TOKEN}\nsha256:abc123\n", "line 2 is not sha256: and 64 hex digits"),
        ("Bearer s3cret-token-one-0123456789\n", "line 1 is not a token"),
        ("short-s3cret\n", "line 1 is shorter than 16 characters"),
    ],
)
def test_an_unusable_file_says_why_without_its_contents(text: str, says: str) -> None:
    with pytest.raises(TokenFileError) as caught:
        parse_tokens(text)
    assert str(caught.value).startswith(says)
    assert "s3cret" not in str(caught.value)


def test_a_byte_order_mark_and_crlf_line_ends_are_no_part_of_a_token(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_bytes(b"\xef\xbb\xbf" + f"{TOKEN}\r\n{OTHER}\r\n".encode())
    assert read_tokens(path) == {hashlib.sha256(t.encode()).digest() for t in (TOKEN, OTHER)}


def test_every_configured_digest_is_compared_in_constant_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"{TOKEN}\n{sha256_line(OTHER)}\n")
    tokens = TokenFile(path)
    compared: list[tuple[bytes, bytes]] = []
    compare_digest = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return compare_digest(a, b)

    monkeypatch.setattr(tokens_module.hmac, "compare_digest", recording)
    assert tokens.accepts(TOKEN.encode())  # the first match does not stop the loop
    assert not tokens.accepts(WRONG.encode())
    assert len(compared) == 4
    assert all(len(a) == len(b) == 32 for a, b in compared)  # digest against digest
    assert {a for a, _ in compared[2:]} == {hashlib.sha256(WRONG.encode()).digest()}


# -- the setting ---------------------------------------------------------------------------------


def test_the_file_is_checked_for_the_api_only(make_settings: MakeSettings, tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    assert make_settings(api_tokens_file=missing).api_tokens_file == missing  # worker, migrate
    with pytest.raises(SettingsError) as caught:
        load_settings(api=True, data_dir=tmp_path, api_tokens_file=missing)
    assert caught.value.variable == "BOARDS_API_TOKENS_FILE"
    assert caught.value.line().startswith(
        f"invalid setting BOARDS_API_TOKENS_FILE='{missing}': no such file; must be the path"
    )


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p.write_text(""), "holds no token"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: (p.write_text(TOKEN), p.chmod(0)), "cannot be read (permission denied)"),
    ],
)
def test_a_bad_token_file_stops_the_api_with_one_line_and_exit_2(
    tmp_path: Path, make: Callable[[Path], object], says: str
) -> None:
    path = tmp_path / "tokens"
    make(path)
    if says.startswith("cannot be read") and os.access(path, os.R_OK):
        pytest.skip("running as root: permissions do not stop reading")
    env = base_env(BOARDS_API_TOKENS_FILE=str(path), BOARDS_DATA_DIR=str(tmp_path / "data"))
    proc = subprocess.run(
        [sys.executable, "-c", "import boards.api.app"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"boards: invalid setting BOARDS_API_TOKENS_FILE='{path}': {says}")
    assert TOKEN not in proc.stderr


# -- the API -------------------------------------------------------------------------------------


def test_no_token_is_401_in_the_error_shape_with_a_bearer_challenge(client: TestClient) -> None:
    before = failures(client, "missing")
    response = client.get("/api/v1/jobs/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="boards"'
    body = response.json()
    assert body == {
        "error": "unauthorized",
        "detail": "send Authorization: Bearer <token>",
        "request_id": response.headers["x-request-id"],
    }
    assert failures(client, "missing") == before + 1


@pytest.mark.parametrize("header", [f"Bearer {WRONG}", "Bearer ", f"Bearer {TOKEN}x"])
def test_a_wrong_token_is_401_invalid_token(client: TestClient, header: str) -> None:
    before = failures(client, "invalid")
    response = client.get("/api/v1/system/health", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="boards", error="invalid_token"'
    assert response.json()["error"] == "unauthorized"
    assert failures(client, "invalid") == before + 1


def test_other_credentials_count_as_no_bearer_token(client: TestClient) -> None:
    response = client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="boards"'


@pytest.mark.parametrize(
    "path", ["/api/v1/system/health", "/metrics", "/openapi.json", "/api/v1/no-such-route"]
)
def test_everything_but_the_probes_needs_the_token(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 401
    assert client.get(path, headers=bearer(TOKEN)).status_code in (200, 404)


def test_the_right_token_reads_a_job_and_the_scheme_is_case_insensitive(
    client: TestClient,
) -> None:
    job_path = "/api/v1/jobs/00000000-0000-0000-0000-000000000000"
    assert client.get(job_path, headers=bearer(TOKEN)).json()["error"] == "not_found"
    response = client.get(job_path, headers={"Authorization": f"bearer  {TOKEN}"})
    assert response.status_code == 404


def test_liveness_and_readiness_stay_open(client: TestClient) -> None:
    assert client.get("/health").status_code == 200
    assert client.get("/health/ready").status_code == 200


def test_a_request_without_a_token_is_refused_before_its_body_is_read(
    client: TestClient,
) -> None:
    # Larger than BOARDS_API_MAX_BODY_BYTES: a 413 would mean the body limit was asked first.
    response = client.post(
        "/api/v1/jobs", content=b"x" * 2_000_000, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401
    assert response.headers["connection"] == "close"


def test_the_body_is_never_received_without_a_token(
    make_settings: MakeSettings, token_file: Path
) -> None:
    app = create_app(make_settings(api_tokens_file=token_file))
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        raise AssertionError("the body was read")

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "path": "/api/v1/jobs",
        "raw_path": b"/api/v1/jobs",
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("test", 80),
        "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 401


def test_the_digest_form_is_accepted(
    make_settings: MakeSettings, migrated_sqlite_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "digests"
    path.write_text(sha256_line(TOKEN) + "\n")
    settings = make_settings(database_url=migrated_sqlite_url, api_tokens_file=path)
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/v1/system/health", headers=bearer(TOKEN)).status_code == 200
        assert client.get("/api/v1/system/health", headers=bearer(OTHER)).status_code == 401


def test_tokens_rotate_when_the_file_changes(
    client: TestClient, token_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert client.get("/metrics", headers=bearer(TOKEN)).status_code == 200
    rewrite(token_file, f"{TOKEN}\n{OTHER}\n")  # a second token for the rollover
    assert client.get("/metrics", headers=bearer(OTHER)).status_code == 200
    assert client.get("/metrics", headers=bearer(TOKEN)).status_code == 200
    rewrite(token_file, f"{sha256_line(OTHER)}\n")  # the old one retired
    assert client.get("/metrics", headers=bearer(TOKEN)).status_code == 401
    assert client.get("/metrics", headers=bearer(OTHER)).status_code == 200
    with caplog.at_level(logging.INFO, logger="boards.api"):
        rewrite(token_file, "")  # a broken update: the tokens in force stay
        assert client.get("/metrics", headers=bearer(OTHER)).status_code == 200
        assert client.get("/metrics", headers=bearer(OTHER)).status_code == 200
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # once per change, not per request
    assert "holds no token; the 1 tokens read before stay in force" in errors[0].getMessage()


def test_tokens_rotate_through_a_kubernetes_secret_volume_swap(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    # The kubelet writes a new timestamped directory, then renames the `..data` symlink to it.
    mount = tmp_path / "api-tokens"
    mount.mkdir()
    first, second = mount / "..2026_01_01", mount / "..2026_01_02"
    first.mkdir()
    (first / "tokens").write_text(TOKEN)
    (mount / "..data").symlink_to(first.name)
    (mount / "tokens").symlink_to("..data/tokens")
    with TestClient(create_app(make_settings(api_tokens_file=mount / "tokens"))) as client:
        assert client.get("/metrics", headers=bearer(TOKEN)).status_code == 200
        second.mkdir()
        (second / "tokens").write_text(OTHER)
        (mount / "..data_tmp").symlink_to(second.name)
        (mount / "..data_tmp").rename(mount / "..data")
        assert client.get("/metrics", headers=bearer(OTHER)).status_code == 200
        assert client.get("/metrics", headers=bearer(TOKEN)).status_code == 401


def test_a_token_is_never_logged(
    client: TestClient, token_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        client.get("/metrics", headers=bearer(WRONG))
        client.get("/metrics", headers=bearer(TOKEN))
        rewrite(token_file, f"{OTHER}\n")
        client.get("/metrics", headers=bearer(OTHER))
    assert caplog.records
    for secret in (TOKEN, OTHER, WRONG):
        assert secret not in caplog.text


def test_refusals_are_counted_before_routing(client: TestClient) -> None:
    client.get("/api/v1/jobs/abc")
    metrics = client.get("/metrics", headers=bearer(TOKEN)).text
    line = 'boards_http_requests_total{method="GET",route="unmatched",status="401"}'
    assert f"{line} 1.0" in metrics
    assert 'boards_auth_failures_total{reason="missing"} 1.0' in metrics


def test_openapi_declares_the_bearer_scheme_on_protected_routes(client: TestClient) -> None:
    schema = client.get("/openapi.json", headers=bearer(TOKEN)).json()
    assert schema["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "a token of BOARDS_API_TOKENS_FILE",
    }
    paths = schema["paths"]
    for path in ("/api/v1/jobs", "/api/v1/jobs/{job_id}", "/api/v1/system/health", "/metrics"):
        for operation in paths[path].values():
            assert operation["security"] == [{"bearer": []}], path
            assert "401" in operation["responses"], path
    for path in ("/health", "/health/ready"):
        for operation in paths[path].values():
            assert "security" not in operation
            assert "401" not in operation["responses"]


# -- start-up ------------------------------------------------------------------------------------


def test_without_the_setting_one_warning_says_every_route_is_open(
    make_settings: MakeSettings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO), TestClient(create_app(make_settings())) as client:
        assert client.get("/metrics").status_code == 200
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "BOARDS_API_TOKENS_FILE is not set: every API route is open to anyone who can reach "
        "this port"
    ]


def test_with_the_setting_no_warning_and_the_count_is_logged(
    make_settings: MakeSettings, token_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(api_tokens_file=token_file)
    with caplog.at_level(logging.INFO), TestClient(create_app(settings)):
        pass
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert f"API tokens: 1 from {token_file}" in caplog.messages
