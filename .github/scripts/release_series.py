#!/usr/bin/env python3
"""Which moving tags a release may move: ``latest``, the major (``1``) and the minor (``1.4``).

metadata-action's ``latest=auto`` and ``{{major}}`` patterns move on every release, so a backport
(``v1.4.3`` after ``v2.0.0``) would pull ``latest`` back to 1.x. Here each moving tag moves only
when this release is the highest final release of its series among the repository's ``v*`` tags:

* ``latest``: highest of all;  ``major``: highest with its major (never for 0.x);
* ``minor``: highest with its major.minor.

Pre-releases (anything but ``v`` + dot-separated numbers) move none and are ignored when
comparing. Inputs, through the environment:

* ``GITHUB_REF``  set by the runner: ``refs/tags/v1.4.2``; any other ref moves nothing.
* ``TAGS``        optional, newline-separated; default ``git tag --list 'v*'`` (the checkout
                  must fetch tags). The released tag must be among them.

Outputs (``GITHUB_OUTPUT``): ``latest``, ``major``, ``minor``: ``true``/``false``. Exit 1 with
one line when the tags cannot be read or do not include the released one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterable

import step_outputs  # beside this script

FINAL_RE = re.compile(r"^v(\d+(?:\.\d+)*)$")
TAG_PREFIX = "refs/tags/"


class SeriesError(Exception):
    pass


def key(tag: str) -> tuple[int, ...] | None:
    """A final release's comparison key (``v1.4`` == ``v1.4.0``); None for anything else."""
    match = FINAL_RE.match(tag)
    if not match:
        return None
    parts = [int(part) for part in match[1].split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def padded(version: tuple[int, ...]) -> tuple[int, int]:
    major, minor, *_ = (*version, 0, 0)
    return major, minor


def decide(ref: str, tags: Iterable[str]) -> dict[str, str]:
    out = {"latest": "false", "major": "false", "minor": "false"}
    if not ref.startswith(TAG_PREFIX + "v"):
        return out
    tag = ref.removeprefix(TAG_PREFIX)
    names = {t.strip() for t in tags if t.strip()}
    if tag not in names:
        raise SeriesError(f"the tag list does not include {tag} (were the tags fetched?)")
    current = key(tag)
    if current is None:
        return out  # a pre-release moves nothing
    finals = [k for k in map(key, names) if k is not None]
    major, minor = padded(current)
    out["latest"] = str(current >= max(finals)).lower()
    same_major = [k for k in finals if padded(k)[0] == major]
    out["major"] = str(major != 0 and current >= max(same_major)).lower()
    out["minor"] = str(current >= max(k for k in finals if padded(k) == (major, minor))).lower()
    return out


def git_tags() -> list[str]:
    result = subprocess.run(
        ["git", "tag", "--list", "v*"],  # noqa: S607 - a fixed argv
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SeriesError(f"git tag --list failed: {result.stderr.strip()}")
    return result.stdout.splitlines()


def main() -> int:
    ref = os.environ.get("GITHUB_REF", "")
    try:
        needed = ref.startswith(TAG_PREFIX + "v")
        tags = os.environ["TAGS"].splitlines() if "TAGS" in os.environ else None
        out = decide(ref, tags if tags is not None else (git_tags() if needed else []))
    except SeriesError as exc:
        return step_outputs.fail("release-series", str(exc))
    print("release-series: " + ", ".join(f"{k}={v}" for k, v in out.items()))
    step_outputs.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
