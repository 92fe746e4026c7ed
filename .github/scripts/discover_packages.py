#!/usr/bin/env python3
"""List the workspace members CI checks, as the matrix for .github/workflows/packages.yml.

A member is any ``packages/<dir>/pyproject.toml``; nothing else registers it. Which members run:

* ``EVENT_NAME`` other than ``pull_request`` (push to main, workflow_dispatch): all of them.
* On a pull request: the members whose files changed, according to ``git diff --name-only``
  between the merge commit GitHub checks out and its first parent (the base branch), plus
  - every member when a workspace-wide file changed (``GLOBAL_FILES``: the lock, the root
    pyproject, the justfile, .python-version, this workflow, these scripts and tools/ci/);
  - every member when a member that ships a pytest plugin changed (its
    ``[project.entry-points.pytest11]`` loads into every member's tests: boards-testing);
  - the members that name a changed member in their pyproject (dependencies, sources), and so on.

Prints the JSON list ``[{"dir": ..., "name": ...}, ...]`` and, when ``GITHUB_OUTPUT`` is set,
appends ``packages=<json>`` to it. Nothing from the event payload is read: the only inputs are
the working tree, git and ``EVENT_NAME``. Directory and distribution names are validated, so a
strange name fails here instead of reaching a shell. Each member must define the poe tasks the
justfile's ``lint-package``/``test-package`` recipes call (``REQUIRED_TASKS``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

GLOBAL_FILES = frozenset(
    {
        "uv.lock",
        "pyproject.toml",
        "justfile",
        ".python-version",
        ".github/workflows/packages.yml",
    }
)
GLOBAL_PREFIXES = (".github/scripts/", "tools/ci/")
REQUIRED_TASKS = ("lint", "typecheck", "test")
DIR_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class DiscoveryError(Exception):
    """The workspace cannot be turned into a CI matrix."""


@dataclass(frozen=True)
class Member:
    dir: str
    name: str
    pyproject: dict[str, object]

    @property
    def path(self) -> str:
        return f"packages/{self.dir}/"

    @property
    def ships_pytest_plugin(self) -> bool:
        project = self.pyproject.get("project", {})
        entry_points = project.get("entry-points", {}) if isinstance(project, dict) else {}
        return isinstance(entry_points, dict) and "pytest11" in entry_points

    def mentions(self, other: Member) -> bool:
        """Whether this member's pyproject names the other's distribution (a dependency)."""
        text = json.dumps(self.pyproject)
        return re.search(rf"(?<![\w.-]){re.escape(other.name)}(?![\w.-])", text) is not None


def load_members(root: Path) -> list[Member]:
    members = []
    for pyproject in sorted(root.glob("packages/*/pyproject.toml")):
        directory = pyproject.parent.name
        if not DIR_RE.match(directory):
            raise DiscoveryError(f"member directory {directory!r} must match {DIR_RE.pattern}")
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise DiscoveryError(f"packages/{directory}/pyproject.toml: {exc}") from None
        project = data.get("project")
        name = project.get("name") if isinstance(project, dict) else None
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise DiscoveryError(f"packages/{directory}/pyproject.toml: no valid [project] name")
        tasks = data.get("tool", {}).get("poe", {}).get("tasks", {})
        missing = [task for task in REQUIRED_TASKS if task not in tasks]
        if missing:
            raise DiscoveryError(
                f"packages/{directory}/pyproject.toml lacks poe task(s) {', '.join(missing)} "
                "(just lint-package/test-package call them; see docs/ci.md)"
            )
        members.append(Member(directory, name, data))
    if not members:
        raise DiscoveryError("no packages/*/pyproject.toml found")
    return members


def changed_files(root: Path, base: str) -> list[str]:
    # A fixed argv (no shell); `base` is a revision from the command line, not the event.
    result = subprocess.run(  # noqa: S603
        ["git", "diff", "--name-only", "--no-renames", base, "HEAD", "--"],  # noqa: S607
        cwd=root,
        check=False,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise DiscoveryError(f"git diff against {base} failed: {result.stderr.strip()}")
    return [line for line in result.stdout.splitlines() if line]


def select(members: list[Member], changed: list[str]) -> list[Member]:
    if any(f in GLOBAL_FILES or f.startswith(GLOBAL_PREFIXES) for f in changed):
        return members
    selected = {m.dir for m in members if any(f.startswith(m.path) for f in changed)}
    if any(m.ships_pytest_plugin for m in members if m.dir in selected):
        return members
    grew = True
    while grew:  # dependents of selected members, transitively
        grew = False
        for member in members:
            if member.dir in selected:
                continue
            if any(member.mentions(dep) for dep in members if dep.dir in selected):
                selected.add(member.dir)
                grew = True
    return [m for m in members if m.dir in selected]


def matrix(members: list[Member]) -> str:
    return json.dumps([{"dir": m.dir, "name": m.name} for m in members], separators=(",", ":"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="workspace root")
    parser.add_argument(
        "--base", default="HEAD^1", help="git revision to diff against on pull requests"
    )
    parser.add_argument(
        "--event",
        default=os.environ.get("EVENT_NAME", ""),
        help="GitHub event name (default: $EVENT_NAME); pull_request selects changed members",
    )
    args = parser.parse_args(argv)
    try:
        members = load_members(args.root)
        if args.event == "pull_request":
            changed = changed_files(args.root, args.base)
            chosen = select(members, changed)
            why = f"{len(changed)} changed file(s)"
        else:
            chosen, why = members, f"event {args.event or 'unknown'}: all members"
    except DiscoveryError as exc:
        print(f"discover-packages: error: {exc}", file=sys.stderr)
        return 2
    result = matrix(chosen)
    print(result)
    print(f"discover-packages: {why}; checking {[m.dir for m in chosen]}", file=sys.stderr)
    output = os.environ.get("GITHUB_OUTPUT")
    if output:
        with open(output, "a", encoding="utf-8") as fh:
            fh.write(f"packages={result}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
