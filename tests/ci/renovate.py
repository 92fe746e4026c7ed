"""Renovate itself, for the checks of .github/renovate.json5.

The npm package and its whole dependency tree are pinned by .github/renovate-validator
(package.json + package-lock.json). `install()` runs `npm ci` from that lock into
.cache/renovate-validator/<hash of the lock>/ once; later runs reuse it (a marker file says the
install finished). Nothing is installed globally; Node.js 20 or 22 and npm must be on PATH.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PINNED = ROOT / ".github" / "renovate-validator"
CACHE = ROOT / ".cache" / "renovate-validator"
CONFIG = ROOT / ".github" / "renovate.json5"
NPM_TIMEOUT_SECONDS = 900
RUN_TIMEOUT_SECONDS = 300


class RenovateUnavailable(RuntimeError):
    """Node.js or npm is missing, or the install failed."""


def _key() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((PINNED / name).read_bytes())
    return digest.hexdigest()[:16]


def install() -> Path:
    """The directory holding node_modules/.bin/renovate*, installed from the lock if need be."""
    home = CACHE / _key()
    done = home / ".installed"
    if done.exists():
        return home
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise RenovateUnavailable(f"{tool} is not on PATH: install Node.js 20 or 22 with npm")
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one install at a time; the others reuse it
        if done.exists():
            return home
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir()
        for name in ("package.json", "package-lock.json"):
            shutil.copy2(PINNED / name, home / name)
        # --ignore-scripts: no install scripts run (the validator needs none; re2 falls back).
        result = subprocess.run(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=home,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_SECONDS,
            check=False,
        )
        if result.returncode != 0:
            raise RenovateUnavailable(f"npm ci of {PINNED} failed: {result.stderr[-3000:]}")
        done.touch()
        for old in CACHE.iterdir():  # earlier pins' installs (hundreds of MB each)
            if old.is_dir() and old != home:
                shutil.rmtree(old, ignore_errors=True)
    return home


def _env() -> dict[str, str]:
    """This environment without any Renovate or token settings a developer may have."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENOVATE_")}
    for token in ("GITHUB_TOKEN", "GITHUB_COM_TOKEN", "GH_TOKEN"):
        env.pop(token, None)
    return env


def validate(config: Path) -> subprocess.CompletedProcess[str]:
    """renovate-config-validator --strict: non-zero on errors and on options needing migration."""
    binary = install() / "node_modules" / ".bin" / "renovate-config-validator"
    return subprocess.run(
        [str(binary), "--strict", str(config)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )


def extract(repo: Path = ROOT) -> dict[str, list[dict[str, Any]]]:
    """What Renovate finds in `repo` with its config: manager -> package files (with deps).

    Renovate's own extraction (`--platform=local --dry-run=extract`): no lookups, no network.
    """
    binary = install() / "node_modules" / ".bin" / "renovate"
    env = _env() | {
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
        "RENOVATE_BASE_DIR": str(ROOT / ".cache" / "renovate"),
    }
    result = subprocess.run(
        [str(binary), "--platform=local", "--dry-run=extract", "--onboarding=false"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        raise RenovateUnavailable(f"renovate extract failed: {result.stdout[-3000:]}")
    for line in result.stdout.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("msg") == "Extracted dependencies":
            files: dict[str, list[dict[str, Any]]] = entry["packageFiles"]
            return files
    raise RenovateUnavailable(f"renovate printed no extraction: {result.stdout[-3000:]}")
