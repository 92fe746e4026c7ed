"""Image resolution (tools/standins/resolve.sh, through its Python wrapper): the official image
when it can be had, else the local stand-in.

No test here builds a stand-in (that needs root and mmdebstrap, which a CI runner lacks): the
builder resolve.sh calls (``BOARDS_STANDIN_BUILDER``) is a stub that records the kinds it was
asked for and answers the stand-in's name, as ``build.sh KIND`` does once it has built or reused
one; ``build.sh --names`` and the engine are real. No ``BOARDS_*`` variable of the caller's shell
reaches a test, so none can bypass the logic under test, and the resolver's cache is the test's
own.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from boards_testing import images

STANDIN_REDIS = "boards-standin/redis:7"
RESOLVE = images.repo_root() / "tools" / "standins" / "resolve.sh"
BUILD = images.repo_root() / "tools" / "standins" / "build.sh"
STUB_BUILDER = """#!/bin/sh
printf '%s\\n' "$1" >>"$STUB_LOG"
[ -z "${STUB_ANSWER:-}" ] || exec echo "$STUB_ANSWER"
"$RESOLVE" --names "$1" | cut -d' ' -f2
"""


@pytest.fixture(autouse=True)
def _no_boards_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("BOARDS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BOARDS_IMAGES_CACHE", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def builds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[], list[str]]:
    """The stub builder; calling the fixture's value gives the kinds it was asked for so far."""
    log = tmp_path / "builds.log"
    stub = tmp_path / "build-stub.sh"
    stub.write_text(STUB_BUILDER)
    stub.chmod(0o755)
    monkeypatch.setenv("BOARDS_STANDIN_BUILDER", str(stub))
    monkeypatch.setenv("STUB_LOG", str(log))
    monkeypatch.setenv("RESOLVE", str(RESOLVE))
    return lambda: log.read_text().split() if log.exists() else []


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


@pytest.mark.parametrize("argv", [[], ["mysql"], ["--explain"], ["python", "uv"]])
def test_resolver_bad_arguments_exit_2(argv: list[str]) -> None:
    proc = subprocess.run([RESOLVE, *argv], capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.startswith("usage: ")


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
    monkeypatch: pytest.MonkeyPatch, builds: Callable[[], list[str]]
) -> None:
    monkeypatch.setenv("BOARDS_REDIS_IMAGE", "registry.example/redis:7-custom")
    resolved = images.resolve_uncached("redis")
    assert resolved == images.Resolution(
        "redis", "redis:7", "registry.example/redis:7-custom", False, "BOARDS_REDIS_IMAGE is set"
    )
    # what the build tooling runs: the name alone, on one line of stdout
    proc = subprocess.run([RESOLVE, "redis"], capture_output=True, text=True, check=True)
    assert proc.stdout == "registry.example/redis:7-custom\n"
    assert builds() == []


def empty_image_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w"):
        pass
    return buffer.getvalue()


@pytest.fixture
def local_image(docker_client: Any) -> Iterator[Callable[..., str]]:
    """Import empty images under given names (with labels), removed afterwards."""
    made: list[str] = []

    def make(name: str, **labels: str) -> str:
        repository, tag = name.rsplit(":", 1)
        changes = [f"LABEL {key}={value}" for key, value in labels.items()] or None
        docker_client.api.import_image_from_data(
            empty_image_tar(), repository=repository, tag=tag, changes=changes
        )
        made.append(str(docker_client.images.get(name).id))
        return made[-1]

    yield make
    for image_id in made:
        docker_client.images.remove(image_id, force=True)


def absent_redis(monkeypatch: pytest.MonkeyPatch) -> str:
    """A redis official name that is neither here nor pullable."""
    absent = f"boards-test/absent-redis:{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("BOARDS_REDIS_OFFICIAL", absent)
    return absent


@pytest.mark.parametrize("retagged_standin", [False, True], ids=["official", "retagged-standin"])
def test_official_name_present_locally_is_used(
    local_image: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    builds: Callable[[], list[str]],
    retagged_standin: bool,
) -> None:
    official = absent_redis(monkeypatch)
    local_image(official, **({images.STANDIN_LABEL: "true"} if retagged_standin else {}))
    resolved = images.resolve_uncached("redis")
    assert resolved == images.Resolution("redis", official, official, False, "present locally")
    assert builds() == []
    # a retagged stand-in is used under the official name, but not silently; a real one quietly
    assert ("RETAGGED STAND-IN" in capsys.readouterr().err) == retagged_standin


def test_absent_and_unpullable_official_falls_back_to_the_standin(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    builds: Callable[[], list[str]],
) -> None:
    absent = absent_redis(monkeypatch)
    resolved = images.resolve_uncached("redis")  # one real `docker pull`, which fails
    assert (resolved.official, resolved.used, resolved.standin) == (absent, STANDIN_REDIS, True)
    assert resolved.reason.startswith("pull failed: ")
    assert builds() == ["redis"]
    err = capsys.readouterr().err
    assert f"USING STAND-IN IMAGE {STANDIN_REDIS}" in err
    assert absent in err


def test_a_failed_pull_is_remembered_until_it_expires(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    absent_redis(monkeypatch)
    first = images.resolve_uncached("redis")
    assert "resolve.sh: pulling " in capsys.readouterr().err
    again = images.resolve_uncached("redis")  # no second wait for the registry
    assert "resolve.sh: pulling " not in capsys.readouterr().err
    assert again.used == STANDIN_REDIS
    assert again.reason.startswith(first.reason + " (remembered; next pull after ")
    # remembered for 0 s: expired at once, so the next call pulls again
    monkeypatch.setenv("BOARDS_PULL_RETRY_AFTER", "0")
    absent_redis(monkeypatch)
    images.resolve_uncached("redis")
    capsys.readouterr()
    images.resolve_uncached("redis")
    assert "resolve.sh: pulling " in capsys.readouterr().err


def test_a_present_official_image_wins_over_a_remembered_failed_pull(
    monkeypatch: pytest.MonkeyPatch, local_image: Callable[..., str]
) -> None:
    official = absent_redis(monkeypatch)
    assert images.resolve_uncached("redis").standin  # the failed pull is now remembered
    local_image(official)  # e.g. `docker load` or a pull by hand
    assert images.resolve_uncached("redis").used == official


def test_pulling_disabled_goes_straight_to_the_standin(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    builds: Callable[[], list[str]],
) -> None:
    absent_redis(monkeypatch)
    monkeypatch.setenv("BOARDS_IMAGES_PULL", "0")
    resolved = images.resolve_uncached("redis")
    assert resolved.reason == "pull failed: pulling is disabled (BOARDS_IMAGES_PULL=0)"
    assert builds() == ["redis"]
    assert "resolve.sh: pulling " not in capsys.readouterr().err


def test_a_builder_answering_another_name_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    absent_redis(monkeypatch)
    monkeypatch.setenv("BOARDS_IMAGES_PULL", "0")
    monkeypatch.setenv("STUB_ANSWER", "boards-standin/other:1")
    with pytest.raises(images.ImageError, match="answered 'boards-standin/other:1', expected"):
        images.resolve_uncached("redis")


def test_an_up_to_date_standin_is_reused_without_asking_build_sh_again(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    local_image: Callable[..., str],
    builds: Callable[[], list[str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """build.sh's check (its recipe hash label) is asked once; its answer is remembered with the
    stand-in's image id and a fingerprint of the recipe's inputs, and asked again when either
    changes. A uv stand-in of a made-up version: its hash is cheap, and nothing real is used."""
    version = f"0.0.1-test{uuid.uuid4().hex[:8]}"
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"ARG UV_IMAGE=ghcr.io/astral-sh/uv:{version}\n")
    monkeypatch.setenv("BOARDS_BACKEND_DOCKERFILE", str(dockerfile))
    monkeypatch.setenv("BOARDS_IMAGES_PULL", "0")
    standin = f"boards-standin/uv:{version}"
    recipe_hash = subprocess.run(
        [BUILD, "--hash", "uv"], capture_output=True, text=True, check=True
    ).stdout.strip()
    labels = {images.STANDIN_LABEL: "true", f"{images.STANDIN_LABEL}.hash": recipe_hash}
    local_image(standin, **labels)

    stub = os.environ["BOARDS_STANDIN_BUILDER"]
    monkeypatch.delenv("BOARDS_STANDIN_BUILDER")  # the real build.sh: it finds the hash current
    assert images.resolve_uncached("uv").used == standin
    assert f"reusing {standin}" in capsys.readouterr().err
    monkeypatch.setenv("BOARDS_STANDIN_BUILDER", stub)

    assert images.resolve_uncached("uv").used == standin
    assert builds() == []  # remembered
    assert f"USING STAND-IN IMAGE {standin}" in capsys.readouterr().err  # and still loud

    monkeypatch.setenv("BOARDS_DEBIAN_MIRROR", "http://mirror.example/debian")  # a recipe input
    images.resolve_uncached("uv")
    assert builds() == ["uv"]
    images.resolve_uncached("uv")
    assert builds() == ["uv"]  # remembered again, for the new input
    local_image(standin, **labels, **{f"{images.STANDIN_LABEL}.built": "again"})  # another id
    images.resolve_uncached("uv")
    assert builds() == ["uv", "uv"]


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
