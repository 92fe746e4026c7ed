"""Build behaviour: the cache, the lock check, and secrets that never land in the image."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from tests.image.support import ROOT, build_image, workspace_copy

STEP = re.compile(r"^#(\d+) \[(?!internal)([^\]]+)\] (.*)$")


def dockerfile_steps(build_output: str) -> dict[str, bool]:
    """Map each Dockerfile step that does work (not FROM) to whether BuildKit reused it."""
    titles: dict[str, str] = {}
    cached: set[str] = set()
    for line in build_output.splitlines():
        if match := STEP.match(line):
            number, _, instruction = match.groups()
            if not instruction.startswith("FROM "):
                titles.setdefault(number, instruction)
        elif (match := re.match(r"^#(\d+) CACHED$", line)) is not None:
            cached.add(match.group(1))
    return {title: number in cached for number, title in titles.items()}


def step(steps: dict[str, bool], fragment: str) -> bool:
    [cached] = [hit for title, hit in steps.items() if fragment in title]
    return cached


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return workspace_copy(tmp_path / "workspace")


def test_rebuild_without_change_reuses_every_step(
    backend_image: str, image_build_env: dict[str, str]
) -> None:
    result = build_image(backend_image, env=image_build_env)
    assert result.returncode == 0, result.stderr[-3000:]
    steps = dockerfile_steps(result.stderr)
    assert steps, result.stderr[-3000:]
    assert all(steps.values()), {title: hit for title, hit in steps.items() if not hit}


def test_code_change_keeps_the_dependency_layer(
    backend_image: str, image_build_env: dict[str, str], workspace: Path
) -> None:
    module = workspace / "packages/backend/src/boards/__init__.py"
    module.write_text(module.read_text() + f"\n# cache test {uuid.uuid4()}\n")
    result = build_image("boards-backend:cache-test", env=image_build_env, context=workspace)
    assert result.returncode == 0, result.stderr[-3000:]
    steps = dockerfile_steps(result.stderr)
    assert step(steps, "uv sync --frozen") is True  # dependencies reused
    assert step(steps, "--locked") is False  # the application rebuilt


def test_stale_lock_fails_the_build_with_uvs_message(
    image_build_env: dict[str, str], workspace: Path
) -> None:
    # Any member's pyproject.toml counts, even one whose code never reaches the image.
    client = workspace / "packages/client/pyproject.toml"
    client.write_text(
        client.read_text().replace("dependencies = [", 'dependencies = ["six>=1", ', 1)
    )
    result = build_image("boards-backend:stale-lock-test", env=image_build_env, context=workspace)
    assert result.returncode != 0
    assert "needs to be updated" in result.stderr, result.stderr[-3000:]


def test_ca_bundle_and_index_url_never_land_in_the_image(
    tmp_path: Path, image_build_env: dict[str, str]
) -> None:
    marker = f"boards-secret-marker-{uuid.uuid4()}"
    system_bundle = Path(os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"))
    bundle = tmp_path / "ca.pem"
    bundle.write_text(system_bundle.read_text() + f"\n# {marker}\n")
    tag = "boards-backend:secret-test"
    result = build_image(
        tag,
        "--no-cache",
        "--build-arg",
        "UV_DEFAULT_INDEX=https://pypi.org/simple",
        env={**image_build_env, "BOARDS_BUILD_CA_BUNDLE": str(bundle)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    try:
        metadata = (
            subprocess.run(
                ["docker", "image", "inspect", tag], capture_output=True, text=True, check=True
            ).stdout
            + subprocess.run(
                ["docker", "history", "--no-trunc", tag], capture_output=True, text=True, check=True
            ).stdout
        )
        for needle in (marker, "ssl_ca", "UV_DEFAULT_INDEX", "netrc"):
            assert needle not in metadata, needle
        archive = tmp_path / "image.tar"
        subprocess.run(["docker", "save", "-o", str(archive), tag], check=True)
        with tarfile.open(archive) as outer:
            for member in outer.getmembers():
                if member.isfile() and member.name.endswith("layer.tar"):
                    layer = outer.extractfile(member)
                    assert layer is not None
                    with tarfile.open(fileobj=layer) as inner:
                        for entry in inner.getmembers():
                            assert not entry.name.startswith("run/secrets/"), entry.name
                            if entry.isfile() and entry.size < 5_000_000:
                                data = inner.extractfile(entry)
                                assert data is not None and marker.encode() not in data.read()
    finally:
        subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, check=False)


def test_image_reports_its_revision(backend_image: str) -> None:
    labels = json.loads(
        subprocess.run(
            ["docker", "image", "inspect", "-f", "{{json .Config.Labels}}", backend_image],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert labels["org.opencontainers.image.revision"] == head
