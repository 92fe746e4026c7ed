#!/usr/bin/env python3
"""Decide where the backend image is pushed; write step outputs for backend-image.yml.

Inputs, all through the environment (never interpolated into the script):

* ``GHCR_OWNER``            ``github.repository_owner``; GHCR wants it lower-case.
* ``DOCKERHUB_USERNAME``    secret; empty on forks and where it is not set.
* ``DOCKERHUB_TOKEN_SET``   ``true``/``false``: whether the DOCKERHUB_TOKEN secret is set
                            (the workflow passes the comparison, not the token).
* ``DOCKERHUB_NAMESPACE``   repository variable; defaults to the username.
* ``IMAGE_NAME``            default ``boards-backend``.

Outputs (``GITHUB_OUTPUT``): ``images`` (newline-separated, for docker/metadata-action),
``ghcr`` (the GHCR image), ``dockerhub`` (``true``/``false``), ``dockerhub_image``.
Docker Hub is skipped, with a notice, when its secrets are missing: forks still build and test.
"""

from __future__ import annotations

import os
import re
import sys

# Docker Hub namespaces: 4-30 lower-case letters/digits (and - or _ inside);
# GHCR owners are GitHub logins (letters, digits, hyphens).
NAMESPACE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,28}[a-z0-9]$")
OWNER_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38})$")
IMAGE_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")


class ConfigError(Exception):
    pass


def decide(env: dict[str, str]) -> dict[str, str]:
    image = env.get("IMAGE_NAME", "").strip() or "boards-backend"
    if not IMAGE_RE.match(image):
        raise ConfigError(f"IMAGE_NAME {image!r} is not a valid image name")
    owner = env.get("GHCR_OWNER", "").strip().lower()
    if not OWNER_RE.match(owner):
        raise ConfigError(f"GHCR_OWNER {owner!r} is not a GitHub owner name")
    ghcr = f"ghcr.io/{owner}/{image}"
    out = {"ghcr": ghcr, "dockerhub": "false", "dockerhub_image": "", "images": ghcr}

    username = env.get("DOCKERHUB_USERNAME", "").strip()
    token_set = env.get("DOCKERHUB_TOKEN_SET", "").strip().lower() == "true"
    if not (username and token_set):
        return out
    namespace = (env.get("DOCKERHUB_NAMESPACE", "").strip() or username).lower()
    if not NAMESPACE_RE.match(namespace):
        raise ConfigError(
            "DOCKERHUB_NAMESPACE (or DOCKERHUB_USERNAME) is not a Docker Hub namespace"
        )
    hub = f"docker.io/{namespace}/{image}"
    out.update(dockerhub="true", dockerhub_image=hub, images=f"{ghcr}\n{hub}")
    return out


def write_outputs(out: dict[str, str], path: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        for key, value in out.items():
            if "\n" in value:
                fh.write(f"{key}<<__EOF__\n{value}\n__EOF__\n")
            else:
                fh.write(f"{key}={value}\n")


def main() -> int:
    try:
        out = decide(dict(os.environ))
    except ConfigError as exc:
        print(f"image-registries: error: {exc}", file=sys.stderr)
        return 2
    if out["dockerhub"] == "false":
        # A workflow command, so the skip shows on the run's summary page.
        print("::notice title=Docker Hub skipped::DOCKERHUB_USERNAME/DOCKERHUB_TOKEN not set")
    print(f"image-registries: pushing to {out['images'].replace(chr(10), ', ')}")
    output = os.environ.get("GITHUB_OUTPUT")
    if output:
        write_outputs(out, output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
