#!/usr/bin/env python3
"""The image's version, and the release check: a ``v*`` tag must be boards-backend's version.

Inputs, through the environment:

* ``GITHUB_REF``   set by the runner: ``refs/tags/v1.4.2``, ``refs/heads/main``, ...
* ``PYPROJECT``    default ``packages/backend/pyproject.toml`` (``[project] version``).

Outputs (``GITHUB_OUTPUT``): ``version`` (as written in the pyproject; the image's
``org.opencontainers.image.version`` label and ``VERSION`` build arg), ``release``
(``true`` on a ``v*`` tag) and ``prerelease`` (``true`` for a pre-release version).

On a ``v*`` tag that does not name that version (compared as PEP 440 versions, so ``v1.5.0-rc.1``
matches ``1.5.0rc1``) it prints an error and exits 1, before anything is built.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from pathlib import Path

import step_outputs  # beside this script

DEFAULT_PYPROJECT = "packages/backend/pyproject.toml"
TAG_PREFIX = "refs/tags/v"

# The PEP 440 forms a release uses: N(.N)*[{a|b|rc}N][.postN][.devN]; spellings normalised
# as in PEP 440 (alpha -> a, c/pre/preview -> rc, separators optional, missing numbers 0).
PEP440 = re.compile(
    r"""^(?P<release>\d+(?:\.\d+)*)
    (?:[-_.]?(?P<pre>alpha|beta|preview|pre|rc|a|b|c)[-_.]?(?P<pre_n>\d+)?)?
    (?:-(?P<post_implicit>\d+)|[-_.]?(?P<post>post|rev|r)[-_.]?(?P<post_n>\d+)?)?
    (?:[-_.]?(?P<dev>dev)[-_.]?(?P<dev_n>\d+)?)?$""",
    re.VERBOSE | re.IGNORECASE,
)
PRE_SPELLINGS = {"alpha": "a", "beta": "b", "c": "rc", "pre": "rc", "preview": "rc"}


class VersionError(Exception):
    pass


def normalize(version: str) -> str:
    """A comparison key: the PEP 440 normal form, trailing zero parts dropped (1.0.0 == 1.0)."""
    match = PEP440.match(version.strip())
    if not match:
        raise VersionError(f"{version!r} is not a release version (PEP 440)")
    release = [int(part) for part in match["release"].split(".")]
    while len(release) > 1 and release[-1] == 0:  # 1.0.0 == 1.0 == 1
        release.pop()
    text = ".".join(map(str, release))
    if match["pre"]:
        pre = match["pre"].lower()
        text += f"{PRE_SPELLINGS.get(pre, pre)}{int(match['pre_n'] or 0)}"
    if match["post_implicit"] is not None or match["post"]:
        text += f".post{int(match['post_implicit'] or match['post_n'] or 0)}"
    if match["dev"]:
        text += f".dev{int(match['dev_n'] or 0)}"
    return text


def is_prerelease(version: str) -> bool:
    match = PEP440.match(version.strip())
    return bool(match and (match["pre"] or match["dev"]))


def package_version(pyproject: Path) -> str:
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise VersionError(f"cannot read {pyproject}: {exc}") from exc
    version = data.get("project", {}).get("version")
    if not isinstance(version, str) or not version:
        raise VersionError(f"{pyproject} has no [project] version")
    normalize(version)  # a version the tag check can compare
    return version


def decide(ref: str, version: str) -> dict[str, str]:
    """The outputs for a run on `ref`; VersionError when a v* tag names another version."""
    out = {
        "version": version,
        "release": "false",
        "prerelease": "true" if is_prerelease(version) else "false",
    }
    if not ref.startswith(TAG_PREFIX):
        return out
    tagged = ref.removeprefix("refs/tags/")
    if normalize(tagged.removeprefix("v")) != normalize(version):
        raise VersionError(
            f"tag {tagged} does not match boards-backend's version {version}: bump the version "
            f"(`uv version --package boards-backend {tagged.removeprefix('v')}`) or tag v{version}"
        )
    out["release"] = "true"
    return out


def main() -> int:
    pyproject = Path(os.environ.get("PYPROJECT") or DEFAULT_PYPROJECT)
    try:
        out = decide(os.environ.get("GITHUB_REF", ""), package_version(pyproject))
    except VersionError as exc:
        return step_outputs.fail("release-version", str(exc))
    print(f"release-version: version {out['version']} (release: {out['release']})")
    step_outputs.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
