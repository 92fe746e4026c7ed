"""The image's structure (container-structure-test) and its size budget (the inspect script)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.image.support import ROOT

MB = 1_000_000


def test_structure(backend_image: str) -> None:
    config = Path(__file__).with_name("structure.yaml")
    result = subprocess.run(
        ["container-structure-test", "test", "--image", backend_image, "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_size_within_budget_on_the_official_base(backend_image: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools/image/inspect_image.py"),
            "--tag",
            backend_image,
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    facts = json.loads(result.stdout)
    assert facts["base"], "the image does not name its base (org.opencontainers.image.base.name)"
    assert facts["projected_on_official_base_bytes"] < facts["budget_bytes"], (
        f"{facts['projected_on_official_base_bytes'] / MB:.1f} MB on the official base"
    )


def test_healthcheck_has_the_documented_settings(backend_image: str) -> None:
    """The image's own HEALTHCHECK (the tests run it faster: support.QUICK_HEALTHCHECK) is the one
    docs/operations.md describes."""
    documented = re.search(
        r"runs `boards healthcheck` every (\d+) s \(timeout (\d+) s, start period (\d+) s,\s+"
        r"(\d+) retries\)",
        (ROOT / "docs/operations.md").read_text(),
    )
    assert documented, "docs/operations.md#health no longer states the HEALTHCHECK settings"
    interval, timeout, start_period, retries = (int(value) for value in documented.groups())
    inspected = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .Config.Healthcheck}}", backend_image],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = 1_000_000_000
    assert json.loads(inspected.stdout) == {
        "Test": ["CMD", "boards", "healthcheck"],
        "Interval": interval * seconds,
        "Timeout": timeout * seconds,
        "StartPeriod": start_period * seconds,
        "Retries": retries,
    }
