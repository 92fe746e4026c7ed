"""The CI helper scripts in .github/scripts: member discovery, registries, the gate job."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / ".github" / "scripts"


def script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"ci_{name}", SCRIPTS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up
    spec.loader.exec_module(module)
    return module


discover = script("discover_packages")
registries = script("image_registries")
gate = script("require_success")

TASKS = """
[tool.poe.tasks]
lint = "ruff check ."
typecheck = "mypy src"
test = "pytest tests"
"""


# ------------------------------------------------------------------------------------------
# discover_packages.py
# ------------------------------------------------------------------------------------------
def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def write_member(repo: Path, directory: str, name: str, extra: str = "") -> None:
    path = repo / "packages" / directory
    path.mkdir(parents=True, exist_ok=True)
    (path / "pyproject.toml").write_text(f'[project]\nname = "{name}"\n{extra}\n{TASKS}')
    (path / "code.py").write_text("x = 1\n")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    repo = tmp_path / "ws"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "ci@example.invalid")
    git(repo, "config", "user.name", "ci")
    git(repo, "config", "commit.gpgsign", "false")
    (repo / "pyproject.toml").write_text('[project]\nname = "root"\n')
    (repo / "uv.lock").write_text("version = 1\n")
    (repo / "README.md").write_text("readme\n")
    write_member(repo, "backend", "boards-backend", 'dependencies = ["fastapi"]')
    write_member(repo, "client", "boards-client", 'dependencies = ["httpx"]')
    write_member(
        repo,
        "testing",
        "boards-testing",
        '[project.entry-points.pytest11]\nboards = "boards_testing.plugin"',
    )
    write_member(repo, "cli", "boards-cli", 'dependencies = ["boards-client>=0.1"]')
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    return repo


def changed_dirs(repo: Path, *paths: str) -> list[str]:
    """Commit a change to paths, then run the discovery as a pull request would."""
    for rel in paths:
        target = repo / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(target.read_text() + "# change\n" if target.exists() else "new\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "change")
    members = discover.load_members(repo)
    return [m.dir for m in discover.select(members, discover.changed_files(repo, "HEAD^1"))]


def test_discovers_every_member_sorted(workspace: Path) -> None:
    members = discover.load_members(workspace)
    assert [(m.dir, m.name) for m in members] == [
        ("backend", "boards-backend"),
        ("cli", "boards-cli"),
        ("client", "boards-client"),
        ("testing", "boards-testing"),
    ]


def test_a_new_member_is_picked_up_without_registration(workspace: Path) -> None:
    write_member(workspace, "newpkg", "boards-new")
    assert changed_dirs(workspace, "packages/newpkg/code.py") == ["newpkg"]


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["packages/backend/code.py"], ["backend"]),
        (["README.md"], []),
        (["packages/client/code.py"], ["cli", "client"]),  # boards-cli depends on it
        (["packages/testing/code.py"], ["backend", "cli", "client", "testing"]),  # pytest plugin
        (["uv.lock"], ["backend", "cli", "client", "testing"]),
        (["pyproject.toml"], ["backend", "cli", "client", "testing"]),
        (["justfile"], ["backend", "cli", "client", "testing"]),
        ([".python-version"], ["backend", "cli", "client", "testing"]),
        ([".github/workflows/packages.yml"], ["backend", "cli", "client", "testing"]),
        ([".github/scripts/require_success.py"], ["backend", "cli", "client", "testing"]),
        ([".github/workflows/backend-image.yml"], []),
    ],
)
def test_pull_request_selects_changed_members(
    workspace: Path, paths: list[str], expected: list[str]
) -> None:
    assert changed_dirs(workspace, *paths) == expected


def test_main_writes_github_output_for_all_on_push(
    workspace: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    output = tmp_path / "out"
    output.write_text("")
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    assert discover.main(["--root", str(workspace), "--event", "push"]) == 0
    line = output.read_text().strip()
    assert line.startswith("packages=")
    assert [m["dir"] for m in json.loads(line.removeprefix("packages="))] == [
        "backend",
        "cli",
        "client",
        "testing",
    ]
    assert json.loads(capsys.readouterr().out)[0] == {"dir": "backend", "name": "boards-backend"}


def test_main_on_pull_request_with_no_member_change_prints_empty(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workspace / "README.md").write_text("changed\n")
    git(workspace, "commit", "-qam", "docs")
    assert discover.main(["--root", str(workspace), "--event", "pull_request"]) == 0
    assert capsys.readouterr().out.strip() == "[]"


@pytest.mark.parametrize(
    ("directory", "pyproject", "message"),
    [
        ("Bad$(id)", '[project]\nname = "x"\n' + TASKS, "must match"),
        ("ok", "[project]\n" + TASKS, "no valid [project] name"),
        ("ok", '[project]\nname = "a b"\n' + TASKS, "no valid [project] name"),
        ("ok", '[project]\nname = "x"\n', "lacks poe task(s) lint, typecheck, test"),
        ("ok", "[project\n", "pyproject.toml"),
    ],
)
def test_bad_members_fail_with_a_clear_message(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    directory: str,
    pyproject: str,
    message: str,
) -> None:
    member = tmp_path / "packages" / directory
    member.mkdir(parents=True)
    (member / "pyproject.toml").write_text(pyproject)
    assert discover.main(["--root", str(tmp_path), "--event", "push"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("discover-packages: error: ") and message in err


def test_git_failure_is_reported(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--root", str(workspace), "--event", "pull_request", "--base", "no-such-rev"]
    assert discover.main(argv) == 2
    assert "git diff against no-such-rev failed" in capsys.readouterr().err


def test_this_workspace_members_are_ready_for_ci() -> None:
    """Every real member defines the poe tasks `just lint-package`/`test-package` run."""
    members = discover.load_members(ROOT)
    dirs = {m.dir for m in members}
    assert {"backend", "client", "testing"} <= dirs
    assert {m.dir for m in members if m.ships_pytest_plugin} >= {"testing"}


# ------------------------------------------------------------------------------------------
# image_registries.py
# ------------------------------------------------------------------------------------------
def test_registries_without_docker_hub_secrets_push_to_ghcr_only() -> None:
    out = registries.decide({"GHCR_OWNER": "Acme-Org", "DOCKERHUB_TOKEN_SET": "false"})
    assert out == {
        "ghcr": "ghcr.io/acme-org/boards-backend",
        "dockerhub": "false",
        "dockerhub_image": "",
        "images": "ghcr.io/acme-org/boards-backend",
    }


def test_registries_need_both_username_and_token() -> None:
    env = {"GHCR_OWNER": "acme", "DOCKERHUB_USERNAME": "bob", "DOCKERHUB_TOKEN_SET": "false"}
    assert registries.decide(env)["dockerhub"] == "false"
    env = {"GHCR_OWNER": "acme", "DOCKERHUB_USERNAME": "", "DOCKERHUB_TOKEN_SET": "true"}
    assert registries.decide(env)["dockerhub"] == "false"


def test_registries_with_docker_hub() -> None:
    env = {
        "GHCR_OWNER": "acme",
        "DOCKERHUB_USERNAME": "bob",
        "DOCKERHUB_TOKEN_SET": "true",
        "DOCKERHUB_NAMESPACE": "",
    }
    out = registries.decide(env)
    assert out["dockerhub"] == "true"
    assert out["images"] == "ghcr.io/acme/boards-backend\ndocker.io/bob/boards-backend"
    env["DOCKERHUB_NAMESPACE"] = "BoardsOrg"
    assert registries.decide(env)["dockerhub_image"] == "docker.io/boardsorg/boards-backend"


@pytest.mark.parametrize(
    "env",
    [
        {"GHCR_OWNER": ""},
        {"GHCR_OWNER": "a b"},
        {"GHCR_OWNER": "acme", "IMAGE_NAME": "Bad/Name"},
        {
            "GHCR_OWNER": "acme",
            "DOCKERHUB_USERNAME": "bob",
            "DOCKERHUB_TOKEN_SET": "true",
            "DOCKERHUB_NAMESPACE": "x$(id)",
        },
    ],
)
def test_registries_reject_bad_names(env: dict[str, str]) -> None:
    with pytest.raises(registries.ConfigError):
        registries.decide(env)


def test_registries_write_multiline_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    registries.write_outputs({"a": "1", "images": "x\ny"}, str(out))
    assert out.read_text() == "a=1\nimages<<__EOF__\nx\ny\n__EOF__\n"


# ------------------------------------------------------------------------------------------
# require_success.py
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("needs", "ok"),
    [
        ({"discover": {"result": "success"}, "package": {"result": "success"}}, True),
        ({"discover": {"result": "success"}, "package": {"result": "skipped"}}, True),
        ({"discover": {"result": "success"}, "package": {"result": "failure"}}, False),
        ({"discover": {"result": "failure"}, "package": {"result": "skipped"}}, False),
        ({"discover": {"result": "success"}, "package": {"result": "cancelled"}}, False),
        ({}, False),
        ([], False),
    ],
)
def test_gate(needs: object, ok: bool) -> None:
    assert (gate.failures(needs) == []) is ok


def test_gate_main_exit_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEEDS", json.dumps({"a": {"result": "failure"}}))
    assert gate.main() == 1
    monkeypatch.setenv("NEEDS", json.dumps({"a": {"result": "success"}}))
    assert gate.main() == 0
    monkeypatch.setenv("NEEDS", "not json")
    assert gate.main() == 2
