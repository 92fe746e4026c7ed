#!/usr/bin/env python3
"""Create the GitHub Release of a ``v*`` tag, with the published image's digests in its notes.

Inputs, through the environment:

* ``GITHUB_REF_NAME``    set by the runner: the tag, e.g. ``v1.4.2``.
* ``GITHUB_REPOSITORY``  set by the runner: ``owner/name``.
* ``NOTES_FILE``         the notes promote_image.py wrote (tags and digests).
* ``GH_TOKEN``           for ``gh`` (the job's ``GITHUB_TOKEN``, ``contents: write``).
* ``LATEST``             ``true`` when this is the highest release (release_series.py): only
                         then does the release become GitHub's "latest", as the image's tag does.

Runs ``gh release create TAG --verify-tag --title ... --notes-file ...``; a pre-release version
(``v1.5.0-rc.1``) is marked as one; only the highest release becomes "latest".
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

TAG_RE = re.compile(r"^v\d+(?:\.\d+)*(?:[-.+]?[A-Za-z0-9]+)*$")
PRERELEASE_RE = re.compile(r"(?i)\d(?:[-_.]?(?:a|alpha|b|beta|rc|c|pre|preview|dev)[-_.]?\d*)")
REPOSITORY_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


class ReleaseError(Exception):
    pass


def command(tag: str, repository: str, notes_file: Path, latest: bool = False) -> list[str]:
    if not TAG_RE.match(tag):
        raise ReleaseError(f"{tag!r} is not a v* version tag")
    if not REPOSITORY_RE.match(repository):
        raise ReleaseError(f"GITHUB_REPOSITORY {repository!r} is not owner/name")
    if not notes_file.is_file() or not notes_file.read_text(encoding="utf-8").strip():
        raise ReleaseError(f"no release notes in {notes_file}")
    argv = [
        "gh",
        "release",
        "create",
        tag,
        "--repo",
        repository,
        "--verify-tag",
        "--title",
        f"boards-backend {tag.removeprefix('v')}",
        "--notes-file",
        str(notes_file),
    ]
    if PRERELEASE_RE.search(tag):
        argv += ["--prerelease", "--latest=false"]
    else:
        argv.append(f"--latest={str(latest).lower()}")
    return argv


def main() -> int:
    try:
        argv = command(
            os.environ.get("GITHUB_REF_NAME", ""),
            os.environ.get("GITHUB_REPOSITORY", ""),
            Path(os.environ.get("NOTES_FILE") or "release-notes.md"),
            latest=os.environ.get("LATEST", "").strip() == "true",
        )
    except ReleaseError as exc:
        print(f"github-release: error: {exc}", file=sys.stderr)
        return 2
    print("github-release: " + " ".join(argv), flush=True)
    return subprocess.run(argv, check=False).returncode  # noqa: S603 - gh argv, validated tag


if __name__ == "__main__":
    sys.exit(main())
