"""Image names: given, else from BOARDS_<KIND>_IMAGE, else the defaults this package can know."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from boards_testing import images


@pytest.fixture(autouse=True)
def _no_boards_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("BOARDS_"):
            monkeypatch.delenv(name)


def test_postgres_and_redis_default_to_the_official_images() -> None:
    assert images.image_name("postgres") == "postgres:15"
    assert images.image_name("redis") == "redis:7"


@pytest.mark.parametrize("kind", images.KINDS)
def test_the_environment_wins_over_the_default(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"BOARDS_{kind.upper()}_IMAGE", f"mirror.example/{kind}:1")
    assert images.image_name(kind) == f"mirror.example/{kind}:1"
    assert images.image_name(kind, "given/x:2") == "given/x:2"  # an argument wins over both


@pytest.mark.parametrize("kind", ["python", "uv"])
def test_python_and_uv_unset_say_how_to_set_them(kind: str) -> None:
    with pytest.raises(images.ImageNotSet) as raised:
        images.image_name(kind)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"BOARDS_{kind.upper()}_IMAGE is not set: ")
    assert f"--{kind}-image" in message


def test_unknown_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown image kind 'mysql'"):
        images.image_name("mysql")


def test_the_package_finds_no_workspace_and_has_no_command() -> None:
    """It takes names; it never looks for tools/ or runs a resolver of the build tooling."""
    source = Path(images.__file__).parent
    text = "\n".join(path.read_text() for path in source.glob("*.py"))
    for trace in ("tools/standins", "resolve.sh", "uv.lock", "parents"):
        assert trace not in text, trace
    dist = __import__("importlib.metadata").metadata.distribution("boards-testing")
    assert [ep.name for ep in dist.entry_points if ep.group == "console_scripts"] == []


def _empty_image(docker_client: Any, name: str, **labels: str) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w"):
        pass
    repository, tag = name.rsplit(":", 1)
    changes = [f"LABEL {key}={value}" for key, value in labels.items()] or None
    docker_client.api.import_image_from_data(
        buffer.getvalue(), repository=repository, tag=tag, changes=changes
    )
    return name


def test_a_labelled_standin_is_noticed(docker_client: Any) -> None:
    tag = uuid.uuid4().hex[:12]
    standin = f"boards-test/standin:{tag}"
    plain = f"boards-test/plain:{tag}"
    _empty_image(docker_client, standin, **{"org.boards.standin": "true"})
    _empty_image(docker_client, plain)
    try:
        assert images.standin_for(docker_client, standin) == "an official image"
        assert images.standin_for(docker_client, plain) is None
        assert images.standin_for(docker_client, f"boards-test/absent:{tag}") is None
    finally:
        for name in (standin, plain):
            docker_client.images.remove(name, force=True)


def test_fixtures_follow_options_then_environment(tmp_path: Path) -> None:
    """In a pytest run of its own: --redis-image wins over BOARDS_REDIS_IMAGE; the variables are
    read as the session starts (a test clearing BOARDS_* for its code changes nothing); an unset
    python image skips its tests with the one-line reason."""
    (tmp_path / "test_it.py").write_text(
        textwrap.dedent(
            """
            import os

            import pytest

            @pytest.fixture(autouse=True)
            def _clean(monkeypatch):
                for name in [n for n in os.environ if n.startswith("BOARDS_")]:
                    monkeypatch.delenv(name)

            def test_redis(redis_image):
                print("REDIS=" + redis_image)

            def test_postgres(postgres_image):
                print("POSTGRES=" + postgres_image)

            def test_python(python_image):
                raise AssertionError("not reached")
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("BOARDS_")}
    env["BOARDS_REDIS_IMAGE"] = "from/env:1"
    env["BOARDS_POSTGRES_IMAGE"] = "from/env:2"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-s", "-rs", "-p", "no:cacheprovider",
         "--redis-image=from/option:1", "test_it.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    out = proc.stdout
    assert "REDIS=from/option:1" in out, out
    assert "POSTGRES=from/env:2" in out, out
    assert "2 passed, 1 skipped" in out, out
    assert "BOARDS_PYTHON_IMAGE is not set: " in out, out
