"""Static checks of .github/workflows: the policy in docs/ci.md, enforced offline.

The checker functions take a workflow's text (or parsed form) and return a list of
violations, so every rule is tested twice: the real workflows pass, and a bad sample fails.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ci.workflows import (
    ROOT,
    WORKFLOWS,
    WORKFLOWS_DIR,
    assert_reports,
    jobs,
    load,
    steps,
)

ZIZMOR_CONFIG = ROOT / ".github" / "zizmor.yml"
DOCS = ROOT / "docs" / "ci.md"

# What a `run:` step may do (docs/ci.md, "What a run step may call", which names each key).
# One command per line; no shell operators (SHELL_OPERATORS is checked first), no `${{ }}`
# (inputs come through `env:`).
RUN_ALLOWED = {
    # a justfile recipe, through the locked dev environment (the recipe name is checked too)
    "uv run --locked just": re.compile(
        r"^uv run --locked just (?P<recipe>[a-z][a-z0-9-]*)(?: .*)?$"
    ),
    # install exactly what uv.lock says
    "uv sync --locked": re.compile(r"^uv sync --locked(?: .*)?$"),
    # a checked-in CI helper: stdlib Python, inputs through the environment
    "python3 .github/scripts/": re.compile(r"^python3 (?P<script>\.github/scripts/[a-z_]+\.py)$"),
    # Renovate's own validator at an exact version (npm has no lock here: the pin is the version)
    "npx --yes --package renovate@": re.compile(
        r"^npx --yes --package renovate@\d+\.\d+\.\d+ -- renovate-config-validator --strict "
        r"\.github/renovate\.json5$"
    ),
}
SHELL_OPERATORS = re.compile(r"[;&|`<>]|\$\(")
USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(?:/[\w./-]+)?@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"^\s+#\s+v\d+\.\d+\.\d+\s*$")


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def tool(name: str) -> str:
    """A tool from this environment (the venv next to the interpreter) or PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: run `uv sync` (it is in the dev group)")
    return found


@cache
def just_recipes() -> frozenset[str]:
    dump = subprocess.run(
        [tool("just"), "--justfile", str(ROOT / "justfile"), "--dump", "--dump-format", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return frozenset(json.loads(dump)["recipes"])


# ------------------------------------------------------------------------------------------
# checkers: each returns a list of human-readable violations
# ------------------------------------------------------------------------------------------
def run_step_violations(wf: dict[Any, Any], recipes: frozenset[str]) -> list[str]:
    bad = []
    for job_id, index, step in steps(wf):
        script = step.get("run")
        if script is None:
            continue
        where = f"{job_id}.steps[{index}]"
        if "${{" in script:
            bad.append(f"{where}: `${{{{ }}}}` in run: (pass values through env:)")
        if step.get("shell") not in (None, "bash"):
            bad.append(f"{where}: shell {step.get('shell')!r}")
        lines = [ln.strip() for ln in script.splitlines() if ln.strip()]
        if not lines:
            bad.append(f"{where}: empty run:")
        for line in lines:
            if line.startswith("#"):
                continue
            if SHELL_OPERATORS.search(line):
                bad.append(f"{where}: shell operator in {line!r}")
                continue
            match = next((m for p in RUN_ALLOWED.values() if (m := p.match(line))), None)
            if match is None:
                bad.append(f"{where}: {line!r} is not a just recipe or an allowed tool")
                continue
            groups = match.groupdict()
            if groups.get("recipe") and groups["recipe"] not in recipes:
                bad.append(f"{where}: no recipe {groups['recipe']!r} in the justfile")
            if groups.get("script") and not (ROOT / groups["script"]).is_file():
                bad.append(f"{where}: {groups['script']} does not exist")
    return bad


def uses_refs(text: str) -> Iterator[tuple[int, str, str]]:
    """(line number, action ref, rest of the line) for every `uses:` line of a workflow."""
    for number, line in enumerate(text.splitlines(), 1):
        if match := USES_LINE.match(line):
            yield number, match["ref"].strip("'\""), match["rest"]


def uses_violations(text: str) -> list[str]:
    bad = []
    for number, ref, rest in uses_refs(text):
        if ref.startswith("./"):
            continue  # an action in this repository
        if not PINNED.match(ref):
            bad.append(f"line {number}: {ref} is not pinned to a full commit SHA")
        elif not VERSION_COMMENT.match(rest):
            bad.append(f"line {number}: {ref} has no `# vX.Y.Z` comment")
    return bad


def pin_conflicts(texts: Iterable[str]) -> list[str]:
    """Actions pinned (SHA and version comment) differently in different places."""
    pins: dict[str, set[str]] = {}
    for text in texts:
        for _, ref, rest in uses_refs(text):
            if "@" in ref:
                action, sha = ref.split("@", 1)
                pins.setdefault(action, set()).add(f"{sha} {rest.strip()}".strip())
    return [f"{a} is pinned {len(p)} ways: {sorted(p)}" for a, p in pins.items() if len(p) > 1]


# Write permissions, exactly where they are needed (docs/ci.md, "Permissions"), per workflow
# file and job. Any other job asking for a write, or these asking for more, is a violation; the
# attestation permissions (id-token, attestations) are the publish job's alone.
WRITES: dict[str, dict[str, frozenset[str]]] = {
    "backend-image.yml": {
        "build": frozenset({"packages"}),  # push the untagged per-platform image to GHCR
        "scan": frozenset({"security-events"}),  # upload the scan's SARIF to code scanning
        "publish": frozenset({"packages", "id-token", "attestations"}),  # tag, sign, attest
        "release": frozenset({"contents"}),  # create the GitHub Release of a v* tag
    },
}


def structure_violations(wf: dict[Any, Any], name: str = "") -> list[str]:
    bad = []
    if wf.get("permissions") != {}:
        bad.append(f"top-level permissions must be {{}}, got {wf.get('permissions')!r}")
    if "concurrency" not in wf:
        bad.append("no top-level concurrency group")
    if not jobs(wf):
        bad.append("no jobs")
    for job_id, job in jobs(wf).items():
        permissions = job.get("permissions")
        if permissions is None:
            bad.append(f"{job_id}: no job-level permissions")
        elif not isinstance(permissions, dict):
            bad.append(f"{job_id}: permissions {permissions!r} (list each one)")
        else:
            writes = {k for k, v in permissions.items() if v == "write"}
            allowed = WRITES.get(name, {}).get(job_id, frozenset())
            if writes - allowed:
                bad.append(
                    f"{job_id}: write permissions {sorted(writes - allowed)} beyond "
                    f"{sorted(allowed) or 'none'}"
                )
        if "uses" not in job and not isinstance(job.get("timeout-minutes"), int):
            bad.append(f"{job_id}: no timeout-minutes")
        if job.get("secrets") == "inherit":
            bad.append(f"{job_id}: secrets: inherit")
    for job_id, index, step in steps(wf):
        checkout = str(step.get("uses", "")).startswith("actions/checkout@")
        if checkout and (step.get("with") or {}).get("persist-credentials") is not False:
            bad.append(f"{job_id}.steps[{index}]: checkout without persist-credentials: false")
    return bad


MEMBER_CHECK = 'uv run --locked just member-check "$PACKAGE_DIR"'


def member_check_violations(wf: dict[Any, Any]) -> list[str]:
    """packages.yml: the per-member job runs `just member-check` on its own member, always."""
    job = jobs(wf).get("package") or {}
    matrix = str(((job.get("strategy") or {}).get("matrix") or {}).get("package", ""))
    if "needs.discover.outputs.packages" not in matrix:
        return ["no `package` job with one matrix entry per discovered member"]
    checks = [s for s in job.get("steps") or [] if s.get("run") == MEMBER_CHECK]
    if len(checks) != 1:
        return [f"package: {len(checks)} `{MEMBER_CHECK}` steps, want 1"]
    (step,) = checks
    bad = []
    if (step.get("env") or {}).get("PACKAGE_DIR") != "${{ matrix.package.dir }}":
        bad.append("package: member-check's PACKAGE_DIR is not ${{ matrix.package.dir }}")
    if "if" in step or step.get("continue-on-error"):
        bad.append("package: member-check may be skipped or fail without failing the job")
    return bad


def zizmor_findings(path: Path, persona: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [
            tool("zizmor"),
            "--offline",
            "--no-progress",
            f"--persona={persona}",
            "--config",
            str(ZIZMOR_CONFIG),
            "--format=json",
            str(path),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip(), f"zizmor printed nothing: {result.stderr}"
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    return findings


def schema_errors(path: Path, schema: str = "vendor.github-workflows") -> str | None:
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", schema, str(path)],
        check=False,
        capture_output=True,
        text=True,
    )
    return None if result.returncode == 0 else result.stdout + result.stderr


# ------------------------------------------------------------------------------------------
# a bad sample: every rule above must reject it
# ------------------------------------------------------------------------------------------
BAD_WORKFLOW = """\
name: bad
on:
  pull_request_target:
permissions: write-all
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ github.event.pull_request.head.sha }}
      - uses: docker/login-action@74a5d142397b4f367a81961eba4e8cd7edddf772
      - run: echo "${{ github.event.pull_request.title }}"
      - run: curl -fsSL https://example.invalid/install.sh | sh
      - run: uv run --locked just no-such-recipe
      - run: pip install boards
      - run: uv sync --locked
        shell: sh
  release:
    permissions:
      contents: write
    uses: ./.github/workflows/release.yml
    secrets: inherit
"""


# ------------------------------------------------------------------------------------------
# the real workflows
# ------------------------------------------------------------------------------------------
def test_there_are_workflows() -> None:
    names = {p.name for p in WORKFLOWS}
    assert {"packages.yml", "backend-image.yml"} <= names
    assert not list(WORKFLOWS_DIR.glob("*.yaml")), "use .yml (ci-lint globs *.yml)"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_run_steps_call_just_or_allowed_tools(path: Path) -> None:
    assert run_step_violations(load(path.read_text()), just_recipes()) == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_uses_are_pinned_with_version_comment(path: Path) -> None:
    assert uses_violations(path.read_text()) == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_structure_least_privilege(path: Path) -> None:
    assert structure_violations(load(path.read_text()), path.name) == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_validates_against_workflow_schema(path: Path) -> None:
    assert schema_errors(path) is None


@pytest.mark.parametrize("persona", ["regular", "auditor"])
def test_zizmor_reports_nothing(persona: str) -> None:
    """Everything zizmor collects under .github, at every severity and confidence."""
    findings = zizmor_findings(ROOT / ".github", persona)
    assert findings == [], [f["ident"] for f in findings]


def test_same_pin_for_the_same_action_everywhere() -> None:
    assert pin_conflicts(path.read_text() for path in WORKFLOWS) == []


# ------------------------------------------------------------------------------------------
# the checkers reject a bad workflow
# ------------------------------------------------------------------------------------------
def test_run_step_checker_rejects_bad_sample() -> None:
    assert_reports(
        run_step_violations(load(BAD_WORKFLOW), just_recipes()),
        "`${{ }}` in run:",
        "shell operator",  # curl | sh
        "no recipe 'no-such-recipe'",
        "'pip install boards' is not a just recipe or an allowed tool",
        "shell 'sh'",
    )


@pytest.mark.parametrize(
    "line",
    [
        "uv run --locked just lint-package client && rm -rf /",
        "uv run just test",  # unlocked
        "uv sync",  # unlocked
        "python3 -c 'print(1)'",
        "python3 .github/scripts/missing.py",
        "npx --yes --package renovate@latest -- renovate-config-validator --strict "
        ".github/renovate.json5",
        "npx --yes --package renovate -- renovate-config-validator --strict .github/renovate.json5",
        "npx --yes --package renovate@44.121.2 -- renovate --platform=local",
        "bash -c 'just test'",
        "echo $(id)",
        "",  # an empty run:
    ],
)
def test_run_step_checker_rejects_line(line: str) -> None:
    wf = {"jobs": {"j": {"steps": [{"run": line}]}}}
    assert run_step_violations(wf, just_recipes()) != []


def test_member_check_runs_for_every_member() -> None:
    assert member_check_violations(load((WORKFLOWS_DIR / "packages.yml").read_text())) == []


def test_member_check_checker_rejects_bad_samples() -> None:
    wf = load((WORKFLOWS_DIR / "packages.yml").read_text())
    package = jobs(wf)["package"]
    index = next(i for i, s in enumerate(package["steps"]) if s.get("run") == MEMBER_CHECK)
    without = copy.deepcopy(wf)
    del jobs(without)["package"]["steps"][index]
    assert member_check_violations(without) == [f"package: 0 `{MEMBER_CHECK}` steps, want 1"]
    other = copy.deepcopy(wf)
    jobs(other)["package"]["steps"][index]["env"] = {"PACKAGE_DIR": "backend"}
    assert "PACKAGE_DIR is not" in "\n".join(member_check_violations(other))
    skipped = copy.deepcopy(wf)
    jobs(skipped)["package"]["steps"][index]["continue-on-error"] = True
    assert "may be skipped" in "\n".join(member_check_violations(skipped))
    assert member_check_violations(load(BAD_WORKFLOW)) != []


def test_uses_checker_rejects_bad_sample() -> None:
    bad = uses_violations(BAD_WORKFLOW)
    assert any("actions/checkout@v4 is not pinned" in b for b in bad)
    assert any("has no `# vX.Y.Z` comment" in b for b in bad)


def test_pin_checker_rejects_two_pins_of_one_action() -> None:
    one = f"      - uses: actions/checkout@{'a' * 40} # v4.2.2\n"
    other = f"      - uses: actions/checkout@{'b' * 40} # v4.2.2\n"
    assert pin_conflicts([one, one]) == []
    (conflict,) = pin_conflicts([one, other])
    assert conflict.startswith("actions/checkout is pinned 2 ways")
    assert pin_conflicts([one, one.replace("v4.2.2", "v4.2.1")]) != []  # same SHA, other comment


def test_structure_checker_rejects_bad_sample() -> None:
    assert_reports(
        structure_violations(load(BAD_WORKFLOW)),
        "top-level permissions must be {}",
        "no top-level concurrency",
        "build: no job-level permissions",
        "build: no timeout-minutes",
        "checkout without persist-credentials: false",
        "release: write permissions ['contents'] beyond none",
        "release: secrets: inherit",
    )


@pytest.mark.parametrize(
    ("job", "permissions", "message"),
    [
        ("build", {"packages": "write", "id-token": "write"}, "['id-token'] beyond ['packages']"),
        ("scan", {"security-events": "write", "packages": "write"}, "['packages'] beyond"),
        ("release", {"contents": "write", "attestations": "write"}, "['attestations'] beyond"),
        ("check", {"contents": "read", "packages": "write"}, "['packages'] beyond none"),
        ("publish", "write-all", "permissions 'write-all'"),
    ],
)
def test_structure_checker_rejects_writes_where_not_needed(
    job: str, permissions: object, message: str
) -> None:
    wf = {
        "permissions": {},
        "concurrency": "x",
        "jobs": {job: {"permissions": permissions, "timeout-minutes": 5, "steps": []}},
    }
    text = "\n".join(structure_violations(wf, "backend-image.yml"))
    assert message in text


def test_schema_check_rejects_invalid_file(tmp_path: Path) -> None:
    path = tmp_path / "invalid.yml"
    path.write_text("on: push\njobs:\n  j:\n    runs-on: ubuntu-24.04\n    stepz: []\n")
    assert schema_errors(path) is not None


def test_zizmor_flags_bad_sample(tmp_path: Path) -> None:
    bad_sample = tmp_path / "bad.yml"
    bad_sample.write_text(BAD_WORKFLOW)
    idents = {f["ident"] for f in zizmor_findings(bad_sample, "regular")}
    assert {"template-injection", "unpinned-uses", "dangerous-triggers"} <= idents


# ------------------------------------------------------------------------------------------
# contracts the docs promise
# ------------------------------------------------------------------------------------------
def test_package_workflow_triggers_and_paths() -> None:
    wf = load((WORKFLOWS_DIR / "packages.yml").read_text())
    on = wf["on"]
    assert set(on) == {"pull_request", "push", "workflow_dispatch"}
    assert on["push"]["branches"] == ["main"]
    # Every pull request runs it (the discover job narrows the matrix), so `packages ok` always
    # reports and can be a required check: a path-filtered workflow's check would stay pending.
    assert not {"paths", "paths-ignore"} & set(on["pull_request"] or {})
    matrix = jobs(wf)["package"]["strategy"]["matrix"]["package"]
    assert "fromJSON(needs.discover.outputs.packages)" in matrix
    runs = [s["run"] for _, _, s in steps(wf) if "run" in s]
    assert 'uv run --locked just lint-package "$PACKAGE_DIR"' in runs
    assert 'uv run --locked just test-package "$PACKAGE_DIR"' in runs
    setup = next(s for _, _, s in steps(wf) if str(s.get("uses", "")).startswith("astral-sh/"))
    assert (
        setup["with"]["enable-cache"] is True
        and setup["with"]["cache-dependency-glob"] == "uv.lock"
    )


def test_ci_checks_workflow_runs_ci_lint_and_the_docs_tests() -> None:
    wf = load((WORKFLOWS_DIR / "ci-checks.yml").read_text())
    on = wf["on"]
    assert on["pull_request"]["paths"] == on["push"]["paths"]
    assert {".github/**", "docs/**", "justfile"} <= set(on["pull_request"]["paths"])
    runs = [s["run"] for _, _, s in steps(wf) if "run" in s]
    assert "uv run --locked just ci-lint" in runs
    assert "uv run --locked just docs-test" in runs


def test_docs_name_every_workflow_secret_variable_and_allowed_tool() -> None:
    docs = DOCS.read_text()
    text = "\n".join(p.read_text() for p in WORKFLOWS)
    for name in set(re.findall(r"\b(?:secrets|vars)\.([A-Z][A-Z0-9_]*)", text)):
        if name != "GITHUB_TOKEN":
            assert f"`{name}`" in docs, f"docs/ci.md does not document {name}"
    for path in WORKFLOWS:
        assert f"`{path.name}`" in docs, f"docs/ci.md does not describe {path.name}"
    for allowed in RUN_ALLOWED:
        assert f"`{allowed}" in docs, f"docs/ci.md does not list {allowed!r} as allowed"


def test_docs_run_the_published_image_with_the_repositorys_compose_file() -> None:
    """docs/ci.md has no compose file of its own: compose.yaml takes the published image."""
    command = re.search(r"^BOARDS_IMAGE=(\S+) docker compose up --no-build", DOCS.read_text(), re.M)
    assert command and command.group(1).startswith("ghcr.io/"), "docs/ci.md: the compose line"
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"api", "worker", "postgres", "redis"}
    for role in ("api", "worker"):
        assert services[role]["image"].startswith("${BOARDS_IMAGE:-")
        conditions = {d["condition"] for d in services[role]["depends_on"].values()}
        assert conditions == {"service_healthy"}
    assert "command" not in services["api"]  # the image's default CMD: api
    assert services["worker"]["command"] == "worker"
    for dep in ("postgres", "redis"):
        assert "healthcheck" in services[dep]
