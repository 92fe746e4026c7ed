"""tools/standins/resolve.sh: the official image when it can be had, else the local stand-in.

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
import sys
import tarfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
STANDIN_LABEL = "org.boards.standin"
STANDIN_REDIS = "boards-standin/redis:7"
RESOLVE = ROOT / "tools" / "standins" / "resolve.sh"
BUILD = ROOT / "tools" / "standins" / "build.sh"
STUB_BUILDER = """#!/bin/sh
printf '%s\\n' "$1" >>"$STUB_LOG"
[ -z "${STUB_ANSWER:-}" ] || exec echo "$STUB_ANSWER"
"$RESOLVE" --names "$1" | cut -d' ' -f2
"""


class ResolveError(RuntimeError):
    """resolve.sh exited non-zero; the message is its last stderr line."""


@dataclass(frozen=True)
class Resolution:
    kind: str
    official: str
    used: str
    standin: bool
    reason: str


def resolver(*args: str) -> str:
    """Run resolve.sh; its stderr is passed on (capsys sees it), its stdout returned."""
    proc = subprocess.run([RESOLVE, *args], capture_output=True, text=True, check=False)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        raise ResolveError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "")
    return proc.stdout


def explain(kind: str) -> Resolution:
    """``resolve.sh --explain KIND``, parsed."""
    kind_, official, used, which, reason = resolver("--explain", kind).rstrip("\n").split("\t")
    assert kind_ == kind
    assert which in ("official", "standin")
    return Resolution(kind, official, used, which == "standin", reason)


def names(kind: str) -> tuple[str, str]:
    official, standin = resolver("--names", kind).split()
    return official, standin


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


@pytest.mark.parametrize(
    "argv", [[], ["mysql"], ["--explain"], ["python", "uv"], ["--env", "redis"], ["--names"]]
)
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
    assert names("uv") == ("ghcr.io/astral-sh/uv:1.2.3", "boards-standin/uv:1.2.3")
    official, standin = names("python")
    assert official.startswith("python:3.12-slim-bookworm@sha256:")
    assert standin == "boards-standin/python:3.12-slim-bookworm"


def test_names_fall_back_without_a_dockerfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOARDS_BACKEND_DOCKERFILE", str(tmp_path / "missing"))
    assert names("python")[0] == "python:3.12-slim-bookworm"
    assert names("uv")[0] == "ghcr.io/astral-sh/uv:0.13.9"
    assert names("postgres") == ("postgres:15", "boards-standin/postgres:15")
    assert names("redis") == ("redis:7", "boards-standin/redis:7")


def test_explicit_environment_variable_wins(
    monkeypatch: pytest.MonkeyPatch, builds: Callable[[], list[str]]
) -> None:
    monkeypatch.setenv("BOARDS_REDIS_IMAGE", "registry.example/redis:7-custom")
    resolved = explain("redis")
    assert resolved == Resolution(
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
    local_image(official, **({STANDIN_LABEL: "true"} if retagged_standin else {}))
    resolved = explain("redis")
    assert resolved == Resolution("redis", official, official, False, "present locally")
    assert builds() == []
    # a retagged stand-in is used under the official name, but not silently; a real one quietly
    assert ("RETAGGED STAND-IN" in capsys.readouterr().err) == retagged_standin


def test_absent_and_unpullable_official_falls_back_to_the_standin(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    builds: Callable[[], list[str]],
) -> None:
    absent = absent_redis(monkeypatch)
    resolved = explain("redis")  # one real `docker pull`, which fails
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
    first = explain("redis")
    assert "resolve.sh: pulling " in capsys.readouterr().err
    again = explain("redis")  # no second wait for the registry
    assert "resolve.sh: pulling " not in capsys.readouterr().err
    assert again.used == STANDIN_REDIS
    assert again.reason.startswith(first.reason + " (remembered; next pull after ")
    # remembered for 0 s: expired at once, so the next call pulls again
    monkeypatch.setenv("BOARDS_PULL_RETRY_AFTER", "0")
    absent_redis(monkeypatch)
    explain("redis")
    capsys.readouterr()
    explain("redis")
    assert "resolve.sh: pulling " in capsys.readouterr().err


def test_a_present_official_image_wins_over_a_remembered_failed_pull(
    monkeypatch: pytest.MonkeyPatch, local_image: Callable[..., str]
) -> None:
    official = absent_redis(monkeypatch)
    assert explain("redis").standin  # the failed pull is now remembered
    local_image(official)  # e.g. `docker load` or a pull by hand
    assert explain("redis").used == official


def test_pulling_disabled_goes_straight_to_the_standin(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    builds: Callable[[], list[str]],
) -> None:
    absent_redis(monkeypatch)
    monkeypatch.setenv("BOARDS_IMAGES_PULL", "0")
    resolved = explain("redis")
    assert resolved.reason == "pull failed: pulling is disabled (BOARDS_IMAGES_PULL=0)"
    assert builds() == ["redis"]
    assert "resolve.sh: pulling " not in capsys.readouterr().err


def test_a_builder_answering_another_name_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    absent_redis(monkeypatch)
    monkeypatch.setenv("BOARDS_IMAGES_PULL", "0")
    monkeypatch.setenv("STUB_ANSWER", "boards-standin/other:1")
    with pytest.raises(ResolveError, match="answered 'boards-standin/other:1', expected"):
        explain("redis")


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
    labels = {STANDIN_LABEL: "true", f"{STANDIN_LABEL}.hash": recipe_hash}
    local_image(standin, **labels)

    stub = os.environ["BOARDS_STANDIN_BUILDER"]
    monkeypatch.delenv("BOARDS_STANDIN_BUILDER")  # the real build.sh: it finds the hash current
    assert explain("uv").used == standin
    assert f"reusing {standin}" in capsys.readouterr().err
    monkeypatch.setenv("BOARDS_STANDIN_BUILDER", stub)

    assert explain("uv").used == standin
    assert builds() == []  # remembered
    assert f"USING STAND-IN IMAGE {standin}" in capsys.readouterr().err  # and still loud

    monkeypatch.setenv("BOARDS_DEBIAN_MIRROR", "http://mirror.example/debian")  # a recipe input
    explain("uv")
    assert builds() == ["uv"]
    explain("uv")
    assert builds() == ["uv"]  # remembered again, for the new input
    local_image(standin, **labels, **{f"{STANDIN_LABEL}.built": "again"})  # another id
    explain("uv")
    assert builds() == ["uv", "uv"]


# -- --env: every kind, as lines for eval or $GITHUB_ENV -------------------------------------


def test_env_prints_one_line_per_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    given = {
        "BOARDS_PYTHON_IMAGE": "python:3.12-slim",
        "BOARDS_UV_IMAGE": "ghcr.io/astral-sh/uv:1",
        "BOARDS_POSTGRES_IMAGE": "mirror/pg 15",
        "BOARDS_REDIS_IMAGE": STANDIN_REDIS,
    }
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    out = resolver("--env")
    assert out.splitlines() == [
        "BOARDS_PYTHON_IMAGE=python:3.12-slim",
        "BOARDS_UV_IMAGE=ghcr.io/astral-sh/uv:1",
        "BOARDS_POSTGRES_IMAGE=mirror/pg\\ 15",
        f"BOARDS_REDIS_IMAGE={STANDIN_REDIS}",
    ]
    # what tools/bootstrap.sh does with them
    script = 'set -a; eval "$1"; printf "%s|" "$BOARDS_POSTGRES_IMAGE" "$BOARDS_REDIS_IMAGE"'
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOARDS_")}
    shown = subprocess.run(
        ["bash", "-c", script, "-", out], env=env, capture_output=True, text=True, check=True
    )
    assert shown.stdout == f"mirror/pg 15|{STANDIN_REDIS}|"


def test_env_fails_when_a_kind_has_no_image(monkeypatch: pytest.MonkeyPatch) -> None:
    absent_redis(monkeypatch)
    monkeypatch.setenv("BOARDS_IMAGES_PULL", "0")
    monkeypatch.setenv("STUB_ANSWER", "boards-standin/other:1")
    for kind in ("python", "uv", "postgres"):
        monkeypatch.setenv(f"BOARDS_{kind.upper()}_IMAGE", f"given/{kind}:1")
    proc = subprocess.run([RESOLVE, "--env"], capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "BOARDS_REDIS_IMAGE" not in proc.stdout
    assert "expected 'boards-standin/redis:7'" in proc.stderr
