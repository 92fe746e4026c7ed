"""`just member-check` (tools/ci/member-check.sh): every workspace member stands alone, and a
member with an undeclared dependency fails, whether it imports it at import time or later."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.ci.workflows import ROOT

TOOL = ROOT / "tools" / "ci" / "member-check.sh"
MEMBERS = sorted(p.parent.name for p in ROOT.glob("packages/*/pyproject.toml"))
TIMEOUT_SECONDS = 300  # a few seconds each with uv's cache; the first run downloads


def member_check(workspace: Path, member: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TOOL), member],
        cwd=workspace,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one log, in order: the tool's steps and deptry's report
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


@pytest.mark.parametrize("member", MEMBERS)
def test_member_stands_alone(member: str) -> None:
    result = member_check(ROOT, member)
    assert result.returncode == 0, result.stdout
    assert f"member-check {member}: ok" in result.stdout
    assert "No dependency issues found" in result.stdout


TINY_ROOT = """\
[project]
name = "tiny-workspace"
version = "0"
requires-python = ">=3.12,<3.13"

[tool.uv]
package = false

[tool.uv.workspace]
members = ["packages/*"]

[dependency-groups]
dev = ["deptry", "pyyaml"]  # yaml in the workspace's own environment, as in the real one
"""
TINY_MEMBER = """\
[project]
name = "tiny"
version = "0.1.0"
requires-python = ">=3.12,<3.13"
dependencies = []

[build-system]
requires = ["uv_build>=0.13,<0.14"]
build-backend = "uv_build"
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with one member, `tiny`, that declares no dependency."""
    root = tmp_path_factory.mktemp("workspace")
    (root / "pyproject.toml").write_text(TINY_ROOT)
    (root / ".python-version").write_text((ROOT / ".python-version").read_text())
    member = root / "packages" / "tiny"
    (member / "src" / "tiny").mkdir(parents=True)
    (member / "pyproject.toml").write_text(TINY_MEMBER)
    (member / "src" / "tiny" / "__init__.py").write_text('"""A tiny member."""\n')
    locked = subprocess.run(
        ["uv", "lock", "--quiet"], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert locked.returncode == 0, locked.stderr
    assert member_check(root, "tiny").returncode == 0  # the sample passes before it is broken
    return root


def test_fails_on_an_undeclared_import_at_import_time(tiny: Path) -> None:
    (tiny / "packages/tiny/src/tiny/__init__.py").write_text("import yaml\n")
    result = member_check(tiny, "tiny")
    assert result.returncode == 1
    assert "No module named 'yaml'" in result.stdout  # the clean venv lacks the dev group's yaml
    assert "member-check tiny: FAILED: import" in result.stdout


def test_fails_on_an_undeclared_import_deptry_finds(tiny: Path) -> None:
    (tiny / "packages/tiny/src/tiny/__init__.py").write_text(
        "def load(text: str) -> object:\n    import yaml\n\n    return yaml.safe_load(text)\n"
    )
    result = member_check(tiny, "tiny")
    assert result.returncode == 1
    assert "DEP001 'yaml' imported but missing from the dependency definitions" in result.stdout
    assert "member-check tiny: FAILED: deptry" in result.stdout


@pytest.mark.parametrize("argument", ["nope", "../backend", ""])
def test_bad_member_exits_2_with_one_line(argument: str) -> None:
    result = member_check(ROOT, argument)
    assert result.returncode == 2
    assert len(result.stdout.strip().splitlines()) == 1
