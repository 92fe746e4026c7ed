"""The docs stay true to the code: every setting is documented (and nothing else is), every
recipe the README names exists, every image build arg is documented."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from boards.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]


def documented(text: str, pattern: str) -> set[str]:
    return set(re.findall(pattern, text, re.MULTILINE))


def test_every_setting_is_documented_and_nothing_else() -> None:
    in_code = {f"{ENV_PREFIX}{name}".upper() for name in Settings.model_fields}
    in_docs = documented((ROOT / "docs/configuration.md").read_text(), r"`(BOARDS_[A-Z_]+)`")
    assert in_code - in_docs == set(), "settings missing from docs/configuration.md"
    assert in_docs - in_code == set(), "docs/configuration.md names settings the code lacks"


def test_readme_recipes_exist() -> None:
    recipes = set(
        subprocess.run(
            ["just", "--summary"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    )
    named = documented((ROOT / "README.md").read_text(), r"`just ([a-z][a-z0-9-]*)")
    assert named, "the README names no recipe"
    assert named - recipes == set()


def test_every_build_arg_is_documented() -> None:
    dockerfile = (ROOT / "packages/backend/Dockerfile").read_text()
    args = documented(dockerfile, r"^ARG ([A-Z_]+)")
    table = documented((ROOT / "docs/image.md").read_text(), r"^\| `([A-Z_]+)` \|")
    assert {"PYTHON_IMAGE", "UV_IMAGE", "VERSION", "REVISION"} <= args
    assert args - table == set()
