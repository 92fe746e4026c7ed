"""One uv version: the tag of the Dockerfile's UV_IMAGE default is the source of truth;
tools/bootstrap.sh reads it from there, and the root pyproject's `required-version` and every
setup-uv step's `version` must say the same (Renovate moves them together, group "uv")."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "packages" / "backend" / "Dockerfile"
BOOTSTRAP = ROOT / "tools" / "bootstrap.sh"
PYPROJECT = ROOT / "pyproject.toml"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
SOURCE = "packages/backend/Dockerfile ARG UV_IMAGE"
UV_IMAGE = re.compile(
    r"^ARG UV_IMAGE=\S+?:(?P<version>\d+\.\d+\.\d+)(?:@sha256:[0-9a-f]{64})?$", re.M
)
REQUIRED = re.compile(r'^required-version\s*=\s*"(?P<spec>[^"]*)"', re.M)


def dockerfile_uv(text: str) -> str | None:
    match = UV_IMAGE.search(text)
    return match["version"] if match else None


def bootstrap_uv(bootstrap: str, dockerfile: str, tmp: Path) -> str:
    """Run bootstrap.sh's own uv-version lines next to a copy of `dockerfile`, as it runs them."""
    lines = [
        ln for ln in bootstrap.splitlines() if re.match(r"^(?:UV_VERSION=|: \"\$\{UV_VERSION)", ln)
    ]
    assert lines, "tools/bootstrap.sh sets no UV_VERSION"
    (tmp / "tools").mkdir(parents=True, exist_ok=True)
    (tmp / "packages" / "backend").mkdir(parents=True, exist_ok=True)
    (tmp / "packages" / "backend" / "Dockerfile").write_text(dockerfile)
    script = tmp / "tools" / "uv-version.sh"
    script.write_text("set -euo pipefail\n" + "\n".join(lines) + '\nprintf "%s" "$UV_VERSION"\n')
    result = subprocess.run(
        [shutil.which("bash") or "bash", str(script)], cwd="/", capture_output=True, text=True
    )
    return result.stdout if result.returncode == 0 else f"<exit {result.returncode}>"


def required_uv(pyproject: str) -> str | None:
    match = REQUIRED.search(pyproject)
    if not match:
        return None
    spec = match["spec"].strip()
    return spec.removeprefix("==") if re.fullmatch(r"==\d+\.\d+\.\d+", spec) else spec


def setup_uv_versions(name: str, text: str) -> dict[str, str | None]:
    found = {}
    for job_id, job in (yaml.safe_load(text).get("jobs") or {}).items():
        for index, step in enumerate(job.get("steps") or []):
            if str(step.get("uses", "")).startswith("astral-sh/setup-uv@"):
                version = (step.get("with") or {}).get("version")
                found[f"{name} {job_id}.steps[{index}] setup-uv version"] = (
                    None if version is None else str(version)
                )
    return found


def uv_versions(tmp: Path) -> dict[str, str | None]:
    dockerfile = DOCKERFILE.read_text()
    places: dict[str, str | None] = {
        SOURCE: dockerfile_uv(dockerfile),
        "tools/bootstrap.sh UV_VERSION": bootstrap_uv(BOOTSTRAP.read_text(), dockerfile, tmp),
        "pyproject.toml required-version": required_uv(PYPROJECT.read_text()),
    }
    for path in WORKFLOWS:
        places |= setup_uv_versions(path.name, path.read_text())
    return places


def disagreements(places: dict[str, str | None]) -> list[str]:
    source = places.get(SOURCE)
    if source is None:
        return [f"{SOURCE} has no X.Y.Z tag"]
    return [
        f"{where}: {version!r}, but {SOURCE} says {source!r}"
        for where, version in places.items()
        if version != source
    ]


def test_every_place_names_the_same_uv(tmp_path: Path) -> None:
    places = uv_versions(tmp_path)
    assert sum(1 for where in places if "setup-uv" in where) >= 3  # every workflow has one
    assert disagreements(places) == []


def test_bootstrap_reads_the_dockerfile_not_a_copy(tmp_path: Path) -> None:
    other = DOCKERFILE.read_text().replace(
        re.search(r"^ARG UV_IMAGE=.*$", DOCKERFILE.read_text(), re.M)[0],  # type: ignore[index]
        "ARG UV_IMAGE=ghcr.io/astral-sh/uv:9.8.7@sha256:" + "0" * 64,
    )
    assert bootstrap_uv(BOOTSTRAP.read_text(), other, tmp_path) == "9.8.7"
    broken = other.replace("ARG UV_IMAGE=", "ARG NOT_UV=")
    assert bootstrap_uv(BOOTSTRAP.read_text(), broken, tmp_path / "b").startswith("<exit")


def test_checker_rejects_disagreeing_places() -> None:
    places: dict[str, str | None] = {
        SOURCE: "0.13.9",
        "tools/bootstrap.sh UV_VERSION": "0.13.9",
        "pyproject.toml required-version": ">=0.13.9",  # a range lets CI's uv drift
        "x.yml build.steps[1] setup-uv version": "0.13.8",
        "y.yml check.steps[1] setup-uv version": None,  # setup-uv would pick one itself
    }
    bad = disagreements(places)
    assert len(bad) == 3
    assert disagreements({SOURCE: None}) == [f"{SOURCE} has no X.Y.Z tag"]


def test_version_readers_parse_what_they_should() -> None:
    assert dockerfile_uv("ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9\n") == "0.13.9"
    assert dockerfile_uv("ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9@sha256:" + "a" * 64) == "0.13.9"
    assert dockerfile_uv("ARG UV_IMAGE=ghcr.io/astral-sh/uv:latest\n") is None
    assert required_uv('required-version = "==0.13.9"\n') == "0.13.9"
    assert required_uv('required-version = ">=0.13.9"\n') == ">=0.13.9"
    wf = "jobs:\n  j:\n    steps:\n      - {uses: astral-sh/setup-uv@x, with: {version: 0.13}}\n"
    assert setup_uv_versions("w.yml", wf) == {"w.yml j.steps[0] setup-uv version": "0.13"}
