"""API tokens on the real image: the token file bind-mounted read-only where Kubernetes mounts
Secret `boards-api-tokens`, requests without, with a wrong and with a right token, a rotation
seen without a restart, and a bad file stopping the API (docs/operations.md, "Security").
Four containers on SQLite, a few seconds each; the compose check starts none."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.image.support import ROOT, backend, base_url, logs, wait_exit, wait_healthy

MOUNT = "/etc/boards/api-tokens"
TOKENS_FILE = f"{MOUNT}/tokens"
TOKEN = "image-s3cret-0123456789abcdef"
DIGESTED = "digested-s3cret-0123456789abcdef"
NEXT = "next-s3cret-0123456789abcdef"
WRONG = "wrong-s3cret-0123456789abcdef"
UID = 1000  # the image's user


def secret_dir(tmp_path: Path, text: str) -> Path:
    """A directory like a mounted Secret: readable by the image's user only."""
    directory = tmp_path / "api-tokens"
    directory.mkdir()
    (directory / "tokens").write_text(text)
    for path, mode in ((directory, 0o500), (directory / "tokens", 0o400)):
        os.chown(path, UID, UID)
        path.chmod(mode)
    return directory


def replace_tokens(directory: Path, text: str) -> None:
    """Publish a new file the way an editor or the kubelet does: write aside, then rename."""
    directory.chmod(0o700)
    aside = directory / ".tokens.new"
    aside.write_text(text)
    os.chown(aside, UID, UID)
    aside.chmod(0o400)
    aside.rename(directory / "tokens")
    directory.chmod(0o500)


def get(url: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(url, headers=headers, timeout=10)


def test_the_api_needs_a_token_from_the_mounted_file(backend_image: str, tmp_path: Path) -> None:
    digest = hashlib.sha256(DIGESTED.encode()).hexdigest()
    directory = secret_dir(tmp_path, f"# rotated 2026-12\n{TOKEN}\nsha256:{digest}\n")
    api = backend(backend_image, env={"BOARDS_API_TOKENS_FILE": TOKENS_FILE}).with_volume_mapping(
        str(directory), MOUNT, "ro"
    )
    with api:
        wait_healthy(api)  # the HEALTHCHECK's /health needs no token
        url = base_url(api)
        health = f"{url}/api/v1/system/health"

        missing = get(health)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="boards"'
        assert missing.json()["error"] == "unauthorized"
        assert missing.json()["request_id"] == missing.headers["x-request-id"]
        wrong = get(f"{url}/api/v1/jobs/00000000-0000-0000-0000-000000000000", WRONG)
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"] == 'Bearer realm="boards", error="invalid_token"'
        refused_post = httpx.post(f"{url}/api/v1/jobs", json={"payload": "x"}, timeout=10)
        assert refused_post.status_code == 401

        assert get(health, TOKEN).json()["status"] == "ok"
        assert get(health, DIGESTED).status_code == 200
        assert get(f"{url}/health").status_code == 200
        assert get(f"{url}/health/ready").status_code == 200

        replace_tokens(directory, f"{NEXT}\n")  # rotated: the old tokens retire
        assert get(health, NEXT).status_code == 200
        assert get(health, TOKEN).status_code == 401

        metrics = get(f"{url}/metrics", NEXT).text
        assert 'boards_auth_failures_total{reason="missing"} 2.0' in metrics
        assert 'boards_auth_failures_total{reason="invalid"} 2.0' in metrics
        text = logs(api)
    assert "API tokens: 2 from /etc/boards/api-tokens/tokens" in text
    assert "API tokens: re-read /etc/boards/api-tokens/tokens, 1 tokens" in text
    assert "is not set" not in text
    for secret in (TOKEN, DIGESTED, NEXT, WRONG, digest):
        assert secret not in text  # the access log has paths and statuses, no headers


def test_without_the_setting_the_api_warns_once_that_it_is_open(backend_image: str) -> None:
    api = backend(backend_image)
    with api:
        wait_healthy(api)
        assert get(f"{base_url(api)}/api/v1/system/health").status_code == 200
        text = logs(api)
    warnings = [line for line in text.splitlines() if "BOARDS_API_TOKENS_FILE is not set" in line]
    assert len(warnings) == 1, text
    assert "[WARNING]" in warnings[0]


@pytest.mark.parametrize(
    ("owner", "text", "says"),
    [
        (UID, "# nothing yet\n", "holds no token"),
        (0, f"{TOKEN}\n", "cannot be read (permission denied)"),  # root's 0400: a common slip
    ],
)
def test_an_unusable_token_file_stops_the_api_with_exit_2(
    backend_image: str, tmp_path: Path, owner: int, text: str, says: str
) -> None:
    directory = secret_dir(tmp_path, text)
    os.chown(directory / "tokens", owner, owner)
    api = backend(
        backend_image, env={"BOARDS_API_TOKENS_FILE": TOKENS_FILE}, port=None
    ).with_volume_mapping(str(directory), MOUNT, "ro")
    with api:
        assert wait_exit(api) == 2
        output = logs(api)
    assert output.strip().splitlines() == [
        f"boards: invalid setting BOARDS_API_TOKENS_FILE='{TOKENS_FILE}': {says}; "
        "must be the path of a readable file of API tokens, one per line (a token of 16+ "
        "characters of A-Z a-z 0-9 -._~+/, or sha256:<64 hex>)"
    ]
    assert "migrat" not in output  # stopped before the migration
    assert TOKEN not in output


@pytest.mark.parametrize("given", [False, True])
def test_the_production_compose_file_requires_the_token_directory(
    given: bool, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "BOARDS_API_TOKENS_DIR"}
    if given:
        env["BOARDS_API_TOKENS_DIR"] = str(tmp_path)
    rendered = subprocess.run(
        [
            *("docker", "compose", "-f", "compose.yaml", "-f", "compose.production.yaml"),
            *("config", "--format", "json"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if not given:
        assert rendered.returncode != 0
        assert "required variable BOARDS_API_TOKENS_DIR is missing" in rendered.stderr
        return
    assert rendered.returncode == 0, rendered.stderr
    api = json.loads(rendered.stdout)["services"]["api"]
    assert api["environment"]["BOARDS_API_TOKENS_FILE"] == TOKENS_FILE
    mount = {"type": "bind", "source": str(tmp_path), "target": MOUNT, "read_only": True}
    assert mount in [{k: v.get(k) for k in mount} for v in api["volumes"]]
