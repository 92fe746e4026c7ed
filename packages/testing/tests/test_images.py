"""Image resolution: the official image when it can be had, else the local stand-in.

No test here builds a stand-in (that needs root and mmdebstrap, which a CI runner lacks):
``build.sh KIND`` is stubbed, ``build.sh --names`` is the real script. No ``BOARDS_*`` variable
of the caller's shell reaches a test, so none can bypass the logic under test.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from boards_testing import images

STANDIN_REDIS = "boards-standin/redis:7"


@pytest.fixture(autouse=True)
def _no_boards_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("BOARDS_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kinds a stand-in was asked for; the stub answers the stand-in's name, as
    ``build.sh KIND`` does once it has built or reused one."""
    real = images._run_build_script
    asked: list[str] = []

    def build_script(*args: str) -> str:
        if args[0].startswith("--"):
            return real(*args)  # --names: reads the Dockerfile, builds nothing
        [kind] = args
        asked.append(kind)
        return images.names(kind)[1]

    monkeypatch.setattr(images, "_run_build_script", build_script)
    return asked


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


def test_explicit_environment_variable_wins(
    monkeypatch: pytest.MonkeyPatch, builds: list[str]
) -> None:
    monkeypatch.setenv("BOARDS_REDIS_IMAGE", "registry.example/redis:7-custom")
    resolved = images.resolve_uncached("redis")
    assert resolved == images.Resolution(
        "redis", "redis:7", "registry.example/redis:7-custom", False, "BOARDS_REDIS_IMAGE is set"
    )
    assert builds == []


def empty_image_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w"):
        pass
    return buffer.getvalue()


@pytest.mark.parametrize("retagged_standin", [False, True], ids=["official", "retagged-standin"])
def test_official_name_present_locally_is_used(
    docker_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    builds: list[str],
    retagged_standin: bool,
) -> None:
    fake_official = f"boards-test/official-redis:{uuid.uuid4().hex[:12]}"
    repository, tag = fake_official.split(":")
    monkeypatch.setenv("BOARDS_REDIS_OFFICIAL", fake_official)
    label = [f"LABEL {images.STANDIN_LABEL}=true"] if retagged_standin else None
    docker_client.api.import_image_from_data(
        empty_image_tar(), repository=repository, tag=tag, changes=label
    )
    try:
        resolved = images.resolve_uncached("redis")
    finally:
        docker_client.images.remove(fake_official)
    assert resolved == images.Resolution(
        "redis", fake_official, fake_official, False, "present locally"
    )
    assert builds == []
    # a retagged stand-in is used under the official name, but not silently; a real one quietly
    assert ("RETAGGED STAND-IN" in capsys.readouterr().err) == retagged_standin


def test_absent_and_unpullable_official_falls_back_to_the_standin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], builds: list[str]
) -> None:
    absent = f"boards-test/absent-redis:{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("BOARDS_REDIS_OFFICIAL", absent)
    resolved = images.resolve_uncached("redis")  # one real `docker pull`, which fails
    assert (resolved.official, resolved.used, resolved.standin) == (absent, STANDIN_REDIS, True)
    assert resolved.reason.startswith("pull failed: ")
    assert builds == ["redis"]
    err = capsys.readouterr().err
    assert f"USING STAND-IN IMAGE {STANDIN_REDIS}" in err
    assert absent in err


def test_pulling_disabled_goes_straight_to_the_standin(
    monkeypatch: pytest.MonkeyPatch, builds: list[str]
) -> None:
    monkeypatch.setenv("BOARDS_REDIS_OFFICIAL", f"boards-test/absent-redis:{uuid.uuid4().hex}")
    monkeypatch.setenv("BOARDS_IMAGES_PULL", "0")
    resolved = images.resolve_uncached("redis")
    assert resolved.reason == "pull failed: pulling is disabled (BOARDS_IMAGES_PULL=0)"
    assert builds == ["redis"]


def test_a_builder_answering_another_name_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOARDS_REDIS_OFFICIAL", f"boards-test/absent-redis:{uuid.uuid4().hex}")
    monkeypatch.setenv("BOARDS_IMAGES_PULL", "0")
    real = images._run_build_script
    monkeypatch.setattr(
        images,
        "_run_build_script",
        lambda *args: real(*args) if args[0] == "--names" else "boards-standin/other:1",
    )
    with pytest.raises(images.ImageError, match="answered 'boards-standin/other:1', expected"):
        images.resolve_uncached("redis")


# -- the per-process memo and the command line, on resolutions given here -----------------------

GIVEN = {
    "python": images.Resolution("python", "python:3.12-slim", "python:3.12-slim", False, "pulled"),
    "uv": images.Resolution("uv", "ghcr.io/astral-sh/uv:1", "ghcr.io/astral-sh/uv:1", False, "x"),
    "postgres": images.Resolution("postgres", "postgres:15", "mirror/pg 15", False, "set"),
    "redis": images.Resolution("redis", "redis:7", STANDIN_REDIS, True, "pull failed: no"),
}


@pytest.fixture
def resolved_now(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A fresh memo whose resolutions are GIVEN; returns the kinds actually resolved."""
    resolved: list[str] = []

    def resolve_uncached(kind: str) -> images.Resolution:
        resolved.append(kind)
        return GIVEN[kind]

    monkeypatch.setattr(images, "_memo", {})
    monkeypatch.setattr(images, "resolve_uncached", resolve_uncached)
    return resolved


def test_resolution_is_memoised_per_process(resolved_now: list[str]) -> None:
    first = images.resolution("redis")
    assert images.resolution("redis") is first
    assert images.resolve("redis") == STANDIN_REDIS
    assert resolved_now == ["redis"]
    assert images.used_standins() == [GIVEN["redis"]]


def test_cli_env_prints_eval_able_lines(
    resolved_now: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert images.main(["env"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "BOARDS_PYTHON_IMAGE=python:3.12-slim",
        "BOARDS_UV_IMAGE=ghcr.io/astral-sh/uv:1",
        "BOARDS_POSTGRES_IMAGE='mirror/pg 15'",
        f"BOARDS_REDIS_IMAGE={STANDIN_REDIS}",
    ]
    assert resolved_now == list(images.KINDS)


def test_cli_ensure_and_resolve(
    resolved_now: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert images.main(["ensure"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "python python:3.12-slim -> python:3.12-slim",
        "uv ghcr.io/astral-sh/uv:1 -> ghcr.io/astral-sh/uv:1",
        "postgres postgres:15 -> mirror/pg 15",
        f"redis redis:7 -> {STANDIN_REDIS}",
    ]
    assert images.main(["resolve", "redis"]) == 0
    assert capsys.readouterr().out == f"{STANDIN_REDIS}\n"
    assert resolved_now == list(images.KINDS)  # each once


def test_cli_error_is_one_line_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(kind: str) -> images.Resolution:
        raise images.ImageError(f"no {kind} today")

    monkeypatch.setattr(images, "_memo", {})
    monkeypatch.setattr(images, "resolve_uncached", fail)
    assert images.main(["resolve", "redis"]) == 1
    assert capsys.readouterr() == ("", "boards-images: error: no redis today\n")
