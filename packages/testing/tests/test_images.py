"""Image resolution: the official image when it can be had, else the local stand-in."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from boards_testing import images

STANDIN_REDIS = "boards-standin/redis:7"


def test_unknown_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown image kind"):
        images.resolve_uncached("mysql")


@pytest.mark.parametrize(
    "argv", [[], ["resolve"], ["resolve", "mysql"], ["ensure", "x"], ["env", "x"], ["bogus"]]
)
def test_cli_bad_arguments_exit_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert images.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("boards-images: ")


def test_console_script_bad_arguments() -> None:
    proc = subprocess.run(
        ["boards-images", "resolve", "nope"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1


def test_names_follow_the_backend_dockerfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "ARG PYTHON_IMAGE=python:3.12-slim-bookworm@sha256:" + "0" * 64 + "\n"
        "ARG UV_IMAGE=ghcr.io/astral-sh/uv:1.2.3\n"
        "FROM ${UV_IMAGE} AS uv\n"
    )
    monkeypatch.setenv("BOARDS_BACKEND_DOCKERFILE", str(dockerfile))
    assert images.names("uv") == ("ghcr.io/astral-sh/uv:1.2.3", "boards-standin/uv:1.2.3")
    official, standin = images.names("python")
    assert official.startswith("python:3.12-slim-bookworm@sha256:")
    assert standin == "boards-standin/python:3.12-slim-bookworm"


def test_names_fall_back_without_a_dockerfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOARDS_BACKEND_DOCKERFILE", str(tmp_path / "missing"))
    assert images.names("python")[0] == "python:3.12-slim-bookworm"
    assert images.names("uv")[0] == "ghcr.io/astral-sh/uv:0.13.9"
    assert images.names("postgres") == ("postgres:15", "boards-standin/postgres:15")
    assert images.names("redis") == ("redis:7", "boards-standin/redis:7")


def test_explicit_environment_variable_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOARDS_REDIS_IMAGE", "registry.example/redis:7-custom")
    resolved = images.resolve_uncached("redis")
    assert resolved.used == "registry.example/redis:7-custom"
    assert not resolved.standin


def test_official_name_present_locally_is_used(
    docker_client: Any,
    redis_image: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_official = f"boards-test/official-redis:{uuid.uuid4().hex[:12]}"
    repository, tag = fake_official.split(":")
    monkeypatch.setenv("BOARDS_REDIS_OFFICIAL", fake_official)
    image = docker_client.images.get(redis_image)
    is_standin = image.labels.get(images.STANDIN_LABEL) == "true"
    image.tag(repository, tag)
    try:
        resolved = images.resolve_uncached("redis")
    finally:
        docker_client.images.remove(fake_official)
    assert resolved.official == fake_official
    assert resolved.used == fake_official
    assert not resolved.standin
    assert resolved.reason == "present locally"
    # a retagged stand-in is used under the official name, but not silently; a real one quietly
    assert ("RETAGGED STAND-IN" in capsys.readouterr().err) == is_standin


def test_absent_and_unpullable_official_falls_back_to_the_standin(
    redis_image: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    absent = f"boards-test/absent-redis:{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("BOARDS_REDIS_OFFICIAL", absent)
    resolved = images.resolve_uncached("redis")
    assert resolved.used == STANDIN_REDIS
    assert resolved.standin
    assert resolved.reason.startswith("pull failed")
    err = capsys.readouterr().err
    assert f"USING STAND-IN IMAGE {STANDIN_REDIS}" in err
    assert absent in err


def test_resolution_is_memoised_per_process(redis_image: str) -> None:
    assert images.resolution("redis") is images.resolution("redis")
    assert images.resolve("redis") == redis_image


def test_cli_env_prints_eval_able_lines(
    python_image: str,
    uv_image: str,
    postgres_image: str,
    redis_image: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert images.main(["env"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"BOARDS_PYTHON_IMAGE={python_image}",
        f"BOARDS_UV_IMAGE={uv_image}",
        f"BOARDS_POSTGRES_IMAGE={postgres_image}",
        f"BOARDS_REDIS_IMAGE={redis_image}",
    ]


def test_cli_ensure_and_resolve(
    python_image: str, redis_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert images.main(["ensure"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(images.KINDS)
    assert all(re.fullmatch(r"\S+ \S+ -> \S+", line) for line in lines)
    assert f"python {images.resolution('python').official} -> {python_image}" in lines
    assert images.main(["resolve", "redis"]) == 0
    assert capsys.readouterr().out == f"{redis_image}\n"
