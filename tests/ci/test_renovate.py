"""The Renovate config, offline: check-jsonschema's vendored Renovate schema accepts it (also with
unknown options forbidden), and the regex manager's matchStrings find every version marked for
it in the files it targets. Renovate's own validator runs in ci-checks.yml, pinned there."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import json5
import pytest

from tests.ci.workflows import ROOT, WORKFLOWS, WORKFLOWS_DIR, load, steps

CONFIG = ROOT / ".github" / "renovate.json5"
MARKER = re.compile(r"#\s*renovate: datasource=")
VALIDATOR = re.compile(
    r"^npx --yes --package renovate@(?P<version>\S+) -- renovate-config-validator --strict "
    r"\.github/renovate\.json5$"
)
EXACT = re.compile(r"^\d+\.\d+\.\d+$")


def check_jsonschema(*args: str) -> str | None:
    """check-jsonschema's report, or None when the file validates."""
    binary = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(binary), *args], check=False, capture_output=True, text=True, timeout=120
    )
    return None if result.returncode == 0 else result.stdout + result.stderr


def strict_schema(tmp_path: Path) -> Path:
    """The vendored schema with every object closed: a misspelt or retired option (such as
    `fileMatch`, now `managerFilePatterns`) fails, as in Renovate's own validator."""
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor") / "renovate.json"
    schema = json.loads(vendor.read_text())

    def close(node: object) -> None:
        if isinstance(node, dict):
            if "properties" in node and not {"additionalProperties", "patternProperties"} & set(
                node
            ):
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    schema["properties"]["$schema"] = {"type": "string"}
    path = tmp_path / "renovate-strict.json"
    path.write_text(json.dumps(schema))
    return path


def schema_errors(config: Path, tmp_path: Path) -> str | None:
    report = check_jsonschema("--builtin-schema", "vendor.renovate", str(config))
    strict = check_jsonschema("--schemafile", str(strict_schema(tmp_path)), str(config))
    return None if report is None and strict is None else f"{report or ''}{strict or ''}"


def config() -> dict[str, Any]:
    data: dict[str, Any] = json5.loads(CONFIG.read_text())
    return data


def regex_pins(cfg: dict[str, Any], files: dict[str, str]) -> Counter[tuple[str, str, str]]:
    """(file, depName, currentValue) for every match of the regex managers, as Renovate finds
    them: the files whose path matches managerFilePatterns, the matchStrings in Python syntax."""
    found: Counter[tuple[str, str, str]] = Counter()
    for manager in cfg.get("customManagers", []):
        assert manager["customType"] == "regex"
        patterns = [re.compile(p.strip("/")) for p in manager["managerFilePatterns"]]
        regexes = [re.compile(m.replace("(?<", "(?P<")) for m in manager["matchStrings"]]
        for rel, text in files.items():
            if any(p.search(rel) for p in patterns):
                for regex in regexes:
                    for match in regex.finditer(text):
                        found[(rel, match["depName"], match["currentValue"])] += 1
    return found


def unmatched_markers(cfg: dict[str, Any], files: dict[str, str]) -> list[str]:
    """`# renovate:` lines no matchString reads: the pin below them would never be updated."""
    found = regex_pins(cfg, files)
    bad = []
    for rel, text in files.items():
        marked = len(MARKER.findall(text))
        matched = sum(n for (file, _, _), n in found.items() if file == rel)
        if marked != matched:
            bad.append(
                f"{rel}: {marked} `# renovate:` line(s), {matched} read by the regex manager"
            )
    return bad


def targeted_files() -> dict[str, str]:
    paths = [ROOT / "pyproject.toml", *WORKFLOWS]
    return {str(p.relative_to(ROOT)): p.read_text() for p in paths}


def expected_pins() -> Counter[tuple[str, str, str]]:
    """What the regex manager must find: uv (the Dockerfile's tag) in pyproject.toml and in every
    setup-uv step, the grype and syft versions, and the pinned Renovate validator."""
    dockerfile = (ROOT / "packages/backend/Dockerfile").read_text()
    ref = re.search(r"^ARG UV_IMAGE=ghcr\.io/astral-sh/uv:([^@\s]+)", dockerfile, re.M)
    assert ref, "no ARG UV_IMAGE default"
    uv = ref[1]
    pins: Counter[tuple[str, str, str]] = Counter(
        {("pyproject.toml", "ghcr.io/astral-sh/uv", uv): 1}
    )
    for path in WORKFLOWS:
        rel = str(path.relative_to(ROOT))
        for _, _, step in steps(load(path.read_text())):
            if str(step.get("uses", "")).startswith("astral-sh/setup-uv@"):
                pins[(rel, "ghcr.io/astral-sh/uv", uv)] += 1
            for key, dep in (("grype-version", "anchore/grype"), ("syft-version", "anchore/syft")):
                if key in (step.get("with") or {}):
                    pins[(rel, dep, str(step["with"][key]))] += 1
            if match := VALIDATOR.match(str(step.get("run", ""))):
                pins[(rel, "renovate", match["version"])] += 1
    return pins


# ------------------------------------------------------------------------------------------
# the real config
# ------------------------------------------------------------------------------------------
def test_config_validates_against_renovate_schema(tmp_path: Path) -> None:
    assert schema_errors(CONFIG, tmp_path) is None


def test_regex_manager_finds_every_marked_pin() -> None:
    expected = expected_pins()
    assert sum(n for (_, dep, _), n in expected.items() if dep == "ghcr.io/astral-sh/uv") >= 4
    assert {dep for _, dep, _ in expected} >= {"anchore/grype", "anchore/syft", "renovate"}
    files = targeted_files()
    assert regex_pins(config(), files) == expected
    assert unmatched_markers(config(), files) == []


def test_renovate_validator_is_pinned_and_run_in_ci() -> None:
    runs = [
        str(step.get("run", ""))
        for _, _, step in steps(load((WORKFLOWS_DIR / "ci-checks.yml").read_text()))
    ]
    versions = [m["version"] for run in runs if (m := VALIDATOR.match(run))]
    assert len(versions) == 1, "ci-checks.yml runs renovate-config-validator once"
    assert EXACT.match(versions[0]), f"renovate@{versions[0]} is not an exact version"


RELEASE_AGE = "7 days"
SPANS = {"7 days": "P7D", "1 week": "P1W"}


def release_age_violations(cfg: dict[str, Any], pyproject: str, lock: str) -> list[str]:
    """Every update waits RELEASE_AGE: each rule's minimumReleaseAge, and a lock re-lock only
    through uv's own `exclude-newer` of the same age (Renovate's age check does not reach the
    versions `uv lock --upgrade` picks), recorded in uv.lock."""
    bad = []
    for rule in cfg.get("packageRules", []):
        age = rule.get("minimumReleaseAge")
        if age is not None and age != RELEASE_AGE:
            bad.append(f"packageRules: minimumReleaseAge {age!r}, want {RELEASE_AGE!r}")
    if not (cfg.get("lockFileMaintenance") or {}).get("enabled"):
        return bad
    uv = tomllib.loads(pyproject).get("tool", {}).get("uv", {})
    exclude = uv.get("exclude-newer")
    if exclude not in SPANS or SPANS[exclude] != SPANS.get(RELEASE_AGE):
        bad.append(f"lockFileMaintenance without [tool.uv] exclude-newer = {RELEASE_AGE!r}")
    span = tomllib.loads(lock).get("options", {}).get("exclude-newer-span")
    if span != SPANS[RELEASE_AGE]:
        bad.append(f"uv.lock records exclude-newer-span {span!r}, not {SPANS[RELEASE_AGE]!r}")
    return bad


def test_updates_wait_the_release_age() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    lock = (ROOT / "uv.lock").read_text()
    assert release_age_violations(config(), pyproject, lock) == []
    ages = {rule.get("minimumReleaseAge") for rule in config()["packageRules"]} - {None}
    assert ages == {RELEASE_AGE}


@pytest.mark.parametrize(
    ("pyproject", "lock", "message"),
    [
        ("[tool.uv]\n", "", "lockFileMaintenance without [tool.uv] exclude-newer"),
        ('[tool.uv]\nexclude-newer = "3 days"\n', "", "without [tool.uv] exclude-newer"),
        (
            '[tool.uv]\nexclude-newer = "7 days"\n',
            '[options]\nexclude-newer-span = "P3D"\n',
            "uv.lock records exclude-newer-span 'P3D'",
        ),
    ],
)
def test_release_age_check_rejects_lock_maintenance_without_uvs_age(
    pyproject: str, lock: str, message: str
) -> None:
    cfg = {"lockFileMaintenance": {"enabled": True}, "packageRules": []}
    assert message in "\n".join(release_age_violations(cfg, pyproject, lock))
    good_pyproject = '[tool.uv]\nexclude-newer = "7 days"\n'
    good_lock = '[options]\nexclude-newer-span = "P7D"\n'
    assert release_age_violations(cfg, good_pyproject, good_lock) == []
    quick = {"packageRules": [{"minimumReleaseAge": "1 day"}]}
    assert release_age_violations(quick, "", "") == [
        "packageRules: minimumReleaseAge '1 day', want '7 days'"
    ]


def test_lock_maintenance_and_groups_are_configured() -> None:
    cfg = config()
    assert cfg["lockFileMaintenance"]["schedule"] == cfg["schedule"]
    groups = {rule.get("groupName") for rule in cfg["packageRules"]}
    assert {"uv", "python base image", "GitHub Actions", "renovate config validator"} <= groups


# ------------------------------------------------------------------------------------------
# the checks reject bad samples
# ------------------------------------------------------------------------------------------
# One bad sample, several mistakes: each must be reported.
BAD_CONFIG = """{
  extendz: ["config:recommended"],
  timezone: 5,
  labels: "dependencies",
  lockFileMaintenance: {enabled: "yes"},
  customManagers: [{customType: "regexx", fileMatch: ["x"], matchStrings: ["x"]}],
  packageRules: [{matchPackageNames: ["x"], groupNme: "y", rangeStrategy: "sometimes"}],
}
"""


def test_schema_check_rejects_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "renovate.json5"
    bad.write_text(BAD_CONFIG)
    report = schema_errors(bad, tmp_path)
    assert report is not None
    for mistake in (
        "'extendz' was unexpected",
        "$.timezone",
        "$.labels",
        "$.lockFileMaintenance.enabled",
        "$.customManagers[0].customType",
        "'fileMatch' was unexpected",
        "'groupNme' was unexpected",
        "$.packageRules[0].rangeStrategy",
    ):
        assert mistake in report, f"{mistake} not reported:\n{report}"


def test_pin_check_rejects_a_marker_the_regex_cannot_read() -> None:
    good = '# renovate: datasource=docker depName=ghcr.io/astral-sh/uv\nversion: "0.13.9"\n'
    unread = [
        '# renovate: datasource=docker depName=ghcr.io/astral-sh/uv\nversion: "latest"\n',
        '# renovate: datasource=docker depName=ghcr.io/astral-sh/uv\nversion: "0.13"\n',
        "# renovate: datasource=npm depName=renovate\nrun: npx renovate-config-validator\n",
    ]
    files = {".github/workflows/x.yml": good}
    assert regex_pins(config(), files) == Counter({(*files, "ghcr.io/astral-sh/uv", "0.13.9"): 1})
    assert unmatched_markers(config(), files) == []
    for text in unread:
        assert unmatched_markers(config(), {".github/workflows/x.yml": text}) != [], text
    assert regex_pins(config(), {"docs/x.yml": good}) == Counter()  # not a targeted file


@pytest.mark.parametrize("version", ["latest", "44", "^44.121.2", "44.121.2 --foo"])
def test_validator_pin_check_rejects_a_loose_version(version: str) -> None:
    line = f"npx --yes --package renovate@{version} -- renovate-config-validator --strict"
    match = VALIDATOR.match(f"{line} .github/renovate.json5")
    assert match is None or not EXACT.match(match["version"])
