"""The Renovate config: Renovate's own validator accepts it, and Renovate's own extraction finds
every pin it is meant to keep current (base image digest, uv everywhere, actions, scanners)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from tests.ci import renovate

ROOT = renovate.ROOT
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
USES = re.compile(
    r"^\s*(?:-\s+)?uses:\s*(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})\s+#\s+(?P<version>v\S+)"
)


class Pin(NamedTuple):
    manager: str
    file: str
    dep: str
    value: str
    digest: str | None = None


@pytest.fixture(scope="module")
def renovate_home() -> Path:
    try:
        return renovate.install()
    except renovate.RenovateUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@cache
def extracted() -> tuple[Pin, ...]:
    found = []
    for manager, files in renovate.extract().items():
        for package_file in files:
            for dep in package_file.get("deps", []):
                found.append(
                    Pin(
                        manager,
                        package_file["packageFile"],
                        str(dep.get("depName")),
                        str(dep.get("currentValue")),
                        dep.get("currentDigest"),
                    )
                )
    return tuple(found)


def missing_pins(found: Iterable[Pin], expected: Iterable[Pin]) -> list[str]:
    """The expected pins Renovate does not see (a digest of None means: any, or none)."""
    have = {(p.manager, p.file, p.dep, p.value): p.digest for p in found}
    bad = []
    for pin in expected:
        key = (pin.manager, pin.file, pin.dep, pin.value)
        if key not in have:
            bad.append(f"{pin.file}: Renovate does not see {pin.dep} {pin.value} ({pin.manager})")
        elif pin.digest is not None and have[key] != pin.digest:
            bad.append(f"{pin.file}: Renovate sees {pin.dep} without its digest {pin.digest}")
    return bad


def expected_pins() -> list[Pin]:
    pins = []
    dockerfile = (ROOT / "packages/backend/Dockerfile").read_text()
    for name in ("PYTHON_IMAGE", "UV_IMAGE"):
        ref = re.search(rf"^ARG {name}=(\S+)$", dockerfile, re.M)
        assert ref, f"no ARG {name} default"
        image, _, digest = ref[1].partition("@")
        dep, _, tag = image.rpartition(":")
        pins.append(Pin("dockerfile", "packages/backend/Dockerfile", dep, tag, digest or None))
    uv = next(p.value for p in pins if p.dep == "ghcr.io/astral-sh/uv")
    pins.append(Pin("regex", "pyproject.toml", "ghcr.io/astral-sh/uv", uv))
    for path in WORKFLOWS:
        rel = str(path.relative_to(ROOT))
        text = path.read_text()
        for line in text.splitlines():
            if match := USES.match(line):
                repo = "/".join(match["action"].split("/")[:2])  # codeql-action/upload-sarif
                pins.append(Pin("github-actions", rel, repo, match["version"], match["sha"]))
        for job in (yaml.safe_load(text).get("jobs") or {}).values():
            for step in job.get("steps") or []:
                if str(step.get("uses", "")).startswith("astral-sh/setup-uv@"):
                    pins.append(Pin("regex", rel, "ghcr.io/astral-sh/uv", uv))
                for key, dep in (
                    ("grype-version", "anchore/grype"),
                    ("syft-version", "anchore/syft"),
                ):
                    if key in (step.get("with") or {}):
                        pins.append(Pin("regex", rel, dep, str(step["with"][key])))
    package = ROOT / ".github/renovate-validator/package.json"
    version = re.search(r'"renovate": "([^"]+)"', package.read_text())
    assert version
    pins.append(Pin("npm", str(package.relative_to(ROOT)), "renovate", version[1]))
    return pins


def test_config_validates(renovate_home: Path) -> None:
    result = renovate.validate(renovate.CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Config validated successfully" in result.stdout


# One bad sample with four mistakes (one validator run costs seconds): each must be reported.
BAD_CONFIG = """{
  "fileMatch": ["x"],
  "schedule": "someday",
  "lockFileMaintenance": {"enabled": "yes"},
  "packageRules": [{"matchPackageNames": ["x"], "groupNme": "y"}]
}"""


def test_validator_rejects_bad_config(renovate_home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "renovate.json"
    bad.write_text(BAD_CONFIG)
    result = renovate.validate(bad)
    assert result.returncode != 0
    report = result.stdout + result.stderr
    for mistake in ("fileMatch", "schedule", "lockFileMaintenance.enabled", "groupNme"):
        assert mistake in report, f"{mistake} not reported:\n{report}"


def test_renovate_finds_every_pin(renovate_home: Path) -> None:
    expected = expected_pins()
    assert len([p for p in expected if p.dep == "ghcr.io/astral-sh/uv"]) >= 4
    assert missing_pins(extracted(), expected) == []


def test_lock_maintenance_and_groups_are_configured() -> None:
    text = renovate.CONFIG.read_text()
    assert re.search(r"lockFileMaintenance:\s*\{\s*enabled:\s*true", text)
    for group in ("uv", "python base image", "GitHub Actions"):
        assert f'groupName: "{group}"' in text


def test_pin_checker_rejects_what_renovate_would_miss() -> None:
    found = [
        Pin("dockerfile", "packages/backend/Dockerfile", "python", "3.12-slim-bookworm"),
        Pin("github-actions", ".github/workflows/x.yml", "actions/checkout", "v7.0.1", "a" * 40),
    ]
    expected = [
        Pin("dockerfile", "packages/backend/Dockerfile", "python", "3.12-slim-bookworm", "s"),
        Pin("regex", "pyproject.toml", "ghcr.io/astral-sh/uv", "0.13.9"),
        Pin("github-actions", ".github/workflows/x.yml", "actions/checkout", "v7.0.1", "a" * 40),
    ]
    bad = missing_pins(found, expected)
    assert len(bad) == 2
    assert "without its digest" in bad[0] and "does not see ghcr.io/astral-sh/uv" in bad[1]


def test_every_workflow_action_is_expected() -> None:
    """The expectation above really lists the workflows' pins (it cannot pass vacuously)."""
    actions: set[Any] = {p.dep for p in expected_pins() if p.manager == "github-actions"}
    assert {"actions/checkout", "docker/build-push-action", "actions/attest"} <= actions
