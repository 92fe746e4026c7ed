"""The docs stay true to the code: each table in docs/ that states a fact living in code (a
setting and its default and bounds, a role, a route, an error code, an exit code, a metric, a
build argument and its default, a recipe) is checked against that code."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from boards import exits
from boards.api.errors import Code
from boards.api.factory import create_app
from boards.api.metrics import ApiMetrics
from boards.cli import ROLES
from boards.db import get_database
from boards.migrations import upgrade_to_head
from boards.settings import ENV_PREFIX, Settings, default_alembic_ini, load_settings
from boards.workers.middleware import WorkerMetrics
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def text_of(name: str) -> str:
    return (DOCS / name).read_text()


def table(markdown: str, header: str) -> list[list[str]]:
    """The rows (cells stripped) of the table whose header row starts with ``header``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        # Split on pipes that are not escaped (`\|` inside a cell) and not inside backticks.
        cells = re.split(r"(?<!\\)\|(?=(?:[^`]*`[^`]*`)*[^`]*$)", line.strip().strip("|"))
        rows.append([cell.strip() for cell in cells])
    assert rows, f"no rows under {header!r}"
    return rows


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


# -- configuration.md ----------------------------------------------------------------------------

SETTINGS_TABLE = "| variable | default | allowed |"
#: Defaults the table words as what they mean rather than as the raw value.
DERIVED = {"database_url", "alembic_ini"}


def _settings_rows() -> dict[str, tuple[str, str]]:
    """field name -> (its default cell part, its whole row), splitting `A` / `B` rows."""
    rows: dict[str, tuple[str, str]] = {}
    for variables, default, allowed in table(text_of("configuration.md"), SETTINGS_TABLE):
        names = ticked(variables)
        parts = [part.strip() for part in default.split(" / ")]
        for index, name in enumerate(names):
            assert name.startswith(ENV_PREFIX), name
            part = parts[index] if len(parts) == len(names) else default
            rows[name[len(ENV_PREFIX) :].lower()] = (part, f"{default} {allowed}")
    return rows


def test_every_setting_is_documented_and_nothing_else() -> None:
    documented = set(_settings_rows())
    assert set(Settings.model_fields) - documented == set(), "missing from configuration.md"
    assert documented - set(Settings.model_fields) == set(), "configuration.md names extra"


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@pytest.mark.parametrize("field", sorted(set(Settings.model_fields) - DERIVED))
def test_documented_default_is_the_code_default(field: str) -> None:
    cell, _ = _settings_rows()[field]
    default = Settings.model_fields[field].default
    assert default is not PydanticUndefined
    first = ticked(cell)[0] if ticked(cell) else cell.split()[0]
    same = Path(first) == default if isinstance(default, Path) else first == _shown(default)
    assert same, f"{field}: docs say {cell!r}, code has {default!r}"


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_documented_bounds_are_the_code_bounds(field: str) -> None:
    _, row = _settings_rows()[field]
    for item in Settings.model_fields[field].metadata:
        for bound in ("ge", "gt", "le", "lt"):
            value = getattr(item, bound, None)
            if value is not None:
                assert re.search(rf"(?<![\d.]){_shown(value)}(?![\d])", row), (
                    f"{field}: bound {bound}={value} not in its row: {row}"
                )


# -- operations.md -------------------------------------------------------------------------------


def test_roles_table_lists_every_role() -> None:
    rows = table(text_of("operations.md"), "| command | what it does |")
    documented = {ticked(command)[0].split()[1] for command, _ in rows}
    assert documented == set(ROLES) | {"ANYTHING"}


def test_exit_codes_table_is_the_code_table() -> None:
    rows = table(text_of("operations.md"), "| exit code | meaning |")
    assert {int(code): meaning for code, meaning in rows} == exits.MEANINGS


def test_routes_table_lists_every_route(tmp_path: Path) -> None:
    app = create_app(load_settings(database_url=f"sqlite:///{tmp_path}/b.db"))
    served = {
        f"{method.upper()} {path}"
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    rows = table(text_of("operations.md"), "| route | answer |")
    assert {ticked(route)[0] for route, _ in rows} == served


def test_error_table_lists_every_error_code() -> None:
    rows = table(text_of("operations.md"), "| status | `error` | when |")
    documented = {code for _, codes, _ in rows for code in ticked(codes)}
    assert documented == {code.value for code in Code}


def _metric_names(header: str) -> set[str]:
    rows = table(text_of("operations.md"), header)
    return {name.split("{")[0] for metric, _ in rows for name in ticked(metric)}


def test_api_metrics_table_is_what_the_api_exports(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/m.db"
    upgrade_to_head(url, default_alembic_ini())
    exported = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in ApiMetrics(get_database(url)).registry.collect()
    }
    assert _metric_names("| metric | what |") == exported


def test_worker_metrics_table_names_our_counters() -> None:
    text = text_of("operations.md")
    worker_part = text[text.index("A worker serves its own") :]
    documented = {name.split("{")[0] for name in re.findall(r"`(boards_[a-z_]+)", worker_part)}
    counters = (WorkerMetrics.RUNS, WorkerMetrics.REDELIVERIES, WorkerMetrics.PRUNED)
    assert documented == {f"{name}_total" for name in counters}


def test_operations_names_only_real_settings() -> None:
    named = set(re.findall(r"`(BOARDS_[A-Z_]+)", text_of("operations.md")))
    real = {f"{ENV_PREFIX}{name}".upper() for name in Settings.model_fields}
    assert named - real == set()


# -- image.md, README ----------------------------------------------------------------------------


def test_build_args_table_is_the_dockerfile() -> None:
    dockerfile = (ROOT / "packages/backend/Dockerfile").read_text()
    defaults: dict[str, str] = {}
    for name, value in re.findall(r"^ARG ([A-Z_]+)(?:=(\S+))?", dockerfile, re.MULTILINE):
        defaults[name] = defaults.get(name) or value  # a later bare `ARG X` re-declares, no more
    rows = table(text_of("image.md"), "| argument | default | meaning |")
    documented = {ticked(name)[0]: default for name, default, _ in rows}
    assert set(documented) == set(defaults)
    for name, value in defaults.items():
        shown = ticked(documented[name])
        if value and shown:  # a default the table words (SOURCE: "the project's URL") is skipped
            assert shown[0] == value, f"{name}: docs {documented[name]!r}, Dockerfile {value!r}"


def test_readme_recipes_exist() -> None:
    recipes = set(
        subprocess.run(
            ["just", "--summary"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    )
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"(?:^|`|\s)just ([a-z][a-z0-9-]*)", readme, re.MULTILINE))
    assert named, "the README names no recipe"
    assert named - recipes == set()
