#!/usr/bin/env python3
"""Record a per-platform image digest that passed its tests, for the publish job.

Run as the last step of a build job, so a digest is recorded only once everything before it
passed. Inputs, through the environment:

* ``DIGEST``      the digest build-push-action pushed (``sha256:`` + 64 hex).
* ``PLATFORM``    ``linux/amd64`` or ``linux/arm64``.
* ``OUTPUT_DIR``  default ``image``: writes ``<os>-<arch>.digest`` there (uploaded as an artifact,
                  next to the SBOM of the same digest).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
PLATFORM_RE = re.compile(r"^linux/(?:amd64|arm64)$")


class RecordError(Exception):
    pass


def slug(platform: str) -> str:
    """linux/arm64 -> linux-arm64: the name of the files about one platform."""
    if not PLATFORM_RE.match(platform):
        raise RecordError(f"PLATFORM {platform!r} is not linux/amd64 or linux/arm64")
    return platform.replace("/", "-")


def record(digest: str, platform: str, directory: Path) -> Path:
    if not DIGEST_RE.match(digest):
        raise RecordError(f"DIGEST {digest!r} is not a sha256 digest")
    path = directory / f"{slug(platform)}.digest"
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(digest + "\n", encoding="utf-8")
    return path


def main() -> int:
    try:
        path = record(
            os.environ.get("DIGEST", "").strip(),
            os.environ.get("PLATFORM", "").strip(),
            Path(os.environ.get("OUTPUT_DIR") or "image"),
        )
    except RecordError as exc:
        print(f"record-digest: error: {exc}", file=sys.stderr)
        return 2
    print(f"record-digest: {path}: {path.read_text().strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
