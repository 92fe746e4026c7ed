"""The layers: product <- build tooling <- test tooling, checked by import-linter in `just lint`
([tool.importlinter] in the root pyproject.toml).

Each contract is shown to break on a copy of the workspace's Python sources given one bad import,
and to hold on the tree. No test module imports another: import-linter's module expressions match
whole names only (no `test_*`), so that rule is checked here, on the syntax trees of every
module under tests/ and packages/.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = ("packages/backend/src", "packages/client/src", "packages/testing/src")
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def lint_imports(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """lint-imports in `root`, its packages found there first (not the editable installs)."""
    path = os.pathsep.join([str(root / r) for r in SOURCE_ROOTS] + [str(root)])
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", *args],
        cwd=root,
        env={**os.environ, "PYTHONPATH": path, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=False,
    )


def python_copy(dest: Path) -> Path:
    """The workspace's Python sources (the graph import-linter reads) and its configuration."""
    for top in (*SOURCE_ROOTS, "tests", "tools"):
        shutil.copytree(
            ROOT / top,
            dest / top,
            ignore=lambda d, names: [
                n for n in names if not n.endswith(".py") and not (Path(d) / n).is_dir()
            ],
        )
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def test_the_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


BOARDS = "packages/backend/src/boards"
CLIENT = "packages/client/src/boards_client"
TESTING = "packages/testing/src/boards_testing"
# (contract id, file in the copy, line added to it): one violation of each rule the layers state.
VIOLATIONS = {
    "boards->client": ("product", f"{BOARDS}/bad.py", "import boards_client"),
    "boards->testing": ("product", f"{BOARDS}/api/bad.py", "from boards_testing import images"),
    "boards->tools": ("product", f"{BOARDS}/bad.py", "import tools.bench.report"),
    "client->boards": ("client", f"{CLIENT}/bad.py", "import boards.jobs"),
    "client->testing": ("client", f"{CLIENT}/bad.py", "import boards_testing"),
    "tools->testing": ("build-tooling", "tools/image/bad.py", "from boards_testing import plugin"),
    "tools->tests": ("build-tooling", "tools/bench/bad.py", "from tests.image import support"),
    "tools-script->tests": ("build-tooling", "tools/bench/report.py", "import tests.chaos.load"),
    "testing->tools": ("test-package", f"{TESTING}/bad.py", "import tools"),
    "testing->tests": ("test-package", f"{TESTING}/bad.py", "import tests"),
    "conftest": ("conftest", "tests/image/bad.py", "from tests import conftest"),
    "db->api": ("boards-layers", f"{BOARDS}/db.py", "import boards.api.app"),
    "api<->workers": ("boards-layers", f"{BOARDS}/api/deps.py", "import boards.workers.broker"),
    "settings->db": ("boards-layers", f"{BOARDS}/settings.py", "from boards import db"),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy that keeps every contract, as the tree does."""
    copy = python_copy(tmp_path_factory.mktemp("workspace"))
    result = lint_imports(copy)
    assert result.returncode == 0, result.stdout + result.stderr
    return copy


@pytest.mark.parametrize("case", VIOLATIONS)
def test_each_contract_breaks_on_a_violation(case: str, pristine: Path, tmp_path: Path) -> None:
    contract, relative, line = VIOLATIONS[case]
    copy = tmp_path / "workspace"
    shutil.copytree(pristine, copy)
    target = copy / relative
    target.write_text((target.read_text() if target.exists() else "") + f"\n{line}\n")
    result = lint_imports(copy, "--contract", contract)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
    assert "1 broken" in result.stdout


# -- no module imports a test module ----------------------------------------------------------


def imports_of_test_modules(path: Path) -> list[str]:
    """The imports in `path` whose target is a test module (test_*.py or conftest.py)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        for name in names:
            last = name.rsplit(".", 1)[-1]
            if last == "conftest" or last.startswith("test_"):
                found.append(f"{path}: {name}")
    return found


def python_files(root: Path) -> list[Path]:
    return [
        p
        for top in ("tests", "packages")
        for p in (root / top).rglob("*.py")
        if ".venv" not in p.parts and "node_modules" not in p.parts
    ]


def test_no_module_imports_a_test_module() -> None:
    """Shared helpers live in support modules (tests/image/support.py, tests/kubernetes/*.py)."""
    assert [hit for p in python_files(ROOT) for hit in imports_of_test_modules(p)] == []


def test_the_check_finds_a_test_module_importing_another(tmp_path: Path) -> None:
    (tmp_path / "tests" / "suite").mkdir(parents=True)
    (tmp_path / "packages").mkdir()
    (tmp_path / "tests" / "suite" / "test_a.py").write_text(
        "from tests.suite.test_b import SAMPLE\nfrom tests.suite import conftest\nimport os\n"
    )
    hits = [hit for p in python_files(tmp_path) for hit in imports_of_test_modules(p)]
    assert [hit.rsplit(": ", 1)[1] for hit in hits] == [
        "tests.suite.test_b",
        "tests.suite.conftest",
    ]
