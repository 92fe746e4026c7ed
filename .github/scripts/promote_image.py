#!/usr/bin/env python3
"""Tag the tested per-platform digests: one multi-platform index per registry.

The build jobs push each platform's image to GHCR by digest only (untagged); the test jobs test
that digest. This step, in the publish job, is the only place a tag is written, and it takes the
digests from the build jobs' own outputs (never from a file a job running test code wrote).
Inputs, through the environment:

* ``SOURCE_IMAGE``  the GHCR image the build jobs pushed to, e.g. ``ghcr.io/acme/boards-backend``.
* ``IMAGES``        newline-separated: every image to tag (GHCR, and Docker Hub when enabled).
* ``TAGS``          newline-separated references from docker/metadata-action (``image:tag``).
* ``ANNOTATIONS``   newline-separated ``index:key=value`` lines from docker/metadata-action.
* ``DIGEST_LINUX_AMD64``, ``DIGEST_LINUX_ARM64``: the build jobs' ``digest`` outputs.
* ``PLATFORMS``     default ``linux/amd64 linux/arm64``: each needs a tested digest.
* ``NOTES_FILE``    optional: release notes (markdown) naming every digest are written there.
* ``GITHUB_REPOSITORY`` (set by the runner) for the notes' ``gh attestation verify`` lines.

A build with provenance pushes, per platform, an index (the image manifest plus BuildKit's
attestation manifest); ``imagetools create`` copies the manifests of those indexes into the new
index, so the per-platform index digests are not in it. So each tested digest is first resolved
to its image manifest (``imagetools inspect --raw``), and after ``imagetools create --tag ...``
(for Docker Hub that copies the manifests across registries: the digests stay the same) the new
index is read back: it must list exactly those image manifests, one per platform.

Outputs (``GITHUB_OUTPUT``): ``ghcr_digest`` and ``dockerhub_digest`` (the index on each; empty
when not pushed there), ``linux_amd64`` and ``linux_arm64`` (each platform's image manifest as
the published index lists it: the subjects of the SBOM attestations).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import step_outputs  # beside this script

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
IMAGE_RE = re.compile(r"^(?:ghcr\.io|docker\.io)/[a-z0-9][a-z0-9_-]*/[a-z0-9]+(?:[._-][a-z0-9]+)*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
ANNOTATION_RE = re.compile(r"^index:[a-z0-9.-]+=[^\n]*$")
PLATFORM_RE = re.compile(r"^linux/(?:amd64|arm64)$")
SPDX = "https://spdx.dev/Document/v2.3"
REGISTRY_KEYS = {"ghcr.io": "ghcr", "docker.io": "dockerhub"}

Runner = Callable[[Sequence[str]], str]


class PromoteError(Exception):
    pass


@dataclass(frozen=True)
class Plan:
    source: str
    digests: dict[str, str]  # platform -> tested digest
    tags: dict[str, list[str]]  # image -> its tags (full references), in metadata order
    annotations: list[str]


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def digest_variable(platform: str) -> str:
    """linux/arm64 -> DIGEST_LINUX_ARM64: the variable holding that platform's build output."""
    return "DIGEST_" + platform.replace("/", "_").upper()


def read_digests(env: dict[str, str], platforms: Sequence[str]) -> dict[str, str]:
    digests = {}
    for platform in platforms:
        if not PLATFORM_RE.match(platform):
            raise PromoteError(f"unknown platform {platform!r}")
        name = digest_variable(platform)
        digest = env.get(name, "").strip()
        if not digest:
            raise PromoteError(f"no tested digest for {platform} ({name} is empty)")
        if not DIGEST_RE.match(digest):
            raise PromoteError(f"{name} holds {digest!r}, not a sha256 digest")
        digests[platform] = digest
    return digests


def plan(env: dict[str, str], digests: dict[str, str]) -> Plan:
    source = env.get("SOURCE_IMAGE", "").strip()
    if not IMAGE_RE.match(source) or not source.startswith("ghcr.io/"):
        raise PromoteError(f"SOURCE_IMAGE {source!r} is not a GHCR image")
    images = lines(env.get("IMAGES", ""))
    if source not in images:
        raise PromoteError(f"IMAGES does not include SOURCE_IMAGE {source}")
    tags: dict[str, list[str]] = {}
    for image in images:
        if not IMAGE_RE.match(image):
            raise PromoteError(f"IMAGES: {image!r} is not a GHCR or Docker Hub image")
        tags[image] = []
    for ref in lines(env.get("TAGS", "")):
        image, _, tag = ref.rpartition(":")
        if image not in tags or not TAG_RE.match(tag):
            raise PromoteError(f"TAGS: {ref!r} is not a tag of {', '.join(images)}")
        tags[image].append(ref)
    for image, refs in tags.items():
        if not refs:
            raise PromoteError(f"no tag for {image}")
    annotations = lines(env.get("ANNOTATIONS", ""))
    for annotation in annotations:
        if not ANNOTATION_RE.match(annotation):
            raise PromoteError(f"ANNOTATIONS: {annotation!r} is not an index annotation")
    return Plan(source, digests, tags, annotations)


def create_command(p: Plan, image: str) -> list[str]:
    command = ["docker", "buildx", "imagetools", "create"]
    for annotation in p.annotations:
        command += ["--annotation", annotation]
    for ref in p.tags[image]:
        command += ["--tag", ref]
    command += [f"{p.source}@{digest}" for digest in p.digests.values()]
    return command


def inspect_command(ref: str) -> list[str]:
    return ["docker", "buildx", "imagetools", "inspect", ref, "--format", "{{json .Manifest}}"]


def raw_command(ref: str) -> list[str]:
    return ["docker", "buildx", "imagetools", "inspect", ref, "--raw"]


def registry_key(image: str) -> str:
    return REGISTRY_KEYS[image.split("/", 1)[0]]


def platform_images(index: object) -> dict[str, str]:
    """An index's image manifests by platform (attestation manifests, unknown/unknown, left out)."""
    found: dict[str, str] = {}
    manifests = index.get("manifests") if isinstance(index, dict) else None
    for entry in manifests if isinstance(manifests, list) else []:
        if not isinstance(entry, dict):
            raise PromoteError(f"the index lists {entry!r}, not a descriptor")
        platform = entry.get("platform") or {}
        name = f"{platform.get('os')}/{platform.get('architecture')}"
        if name == "unknown/unknown":
            continue
        if name in found:
            raise PromoteError(f"the index lists {name} twice")
        found[name] = str(entry.get("digest", ""))
    return found


def image_manifest(p: Plan, platform: str, run: Runner) -> str:
    """The image manifest a tested digest stands for: itself, or its index's one for platform."""
    tested = p.digests[platform]
    raw = json.loads(run(raw_command(f"{p.source}@{tested}")))
    if not isinstance(raw, dict) or "manifests" not in raw:
        return tested  # pushed without attestations: the digest is the image manifest
    images = platform_images(raw)
    if set(images) != {platform} or not DIGEST_RE.match(images[platform]):
        raise PromoteError(f"{p.source}@{tested} holds {sorted(images)}, not one {platform} image")
    return images[platform]


def promote(p: Plan, run: Runner) -> dict[str, str]:
    """Create every index, check what it lists; the outputs for GITHUB_OUTPUT."""
    expected = {platform: image_manifest(p, platform, run) for platform in p.digests}
    out = {"ghcr_digest": "", "dockerhub_digest": ""}
    for platform, digest in expected.items():
        out[platform.replace("/", "_")] = digest
    for image, refs in p.tags.items():
        run(create_command(p, image))
        manifest = json.loads(run(inspect_command(refs[0])))
        digest = manifest.get("digest", "") if isinstance(manifest, dict) else ""
        if not DIGEST_RE.match(digest):
            raise PromoteError(f"imagetools inspect {refs[0]} gave no digest: {manifest!r}")
        listed = platform_images(json.loads(run(raw_command(f"{image}@{digest}"))))
        if listed != expected:
            raise PromoteError(f"{image}@{digest} lists {listed}, not the tested {expected}")
        out[f"{registry_key(image)}_digest"] = digest
    return out


def notes(p: Plan, out: dict[str, str], repository: str) -> str:
    """Release notes: what was published, by digest, and how to check it."""
    rows = [
        f"| `{ref}` | `{out[registry_key(image) + '_digest']}` |"
        for image, refs in p.tags.items()
        for ref in refs
    ]
    platform_rows = [
        f"| {platform} | `{out[platform.replace('/', '_')]}` | `{tested}` |"
        for platform, tested in p.digests.items()
    ]
    ghcr = p.source
    index = out["ghcr_digest"]
    return "\n".join(
        [
            "## Container image",
            "",
            f"One multi-platform index ({', '.join(p.digests)}), tagged only after each",
            "platform's image passed the image tests by digest and its SBOM passed the scan.",
            "",
            "| tag | index digest |",
            "| --- | --- |",
            *rows,
            "",
            "| platform | image manifest (in the index) | pushed and tested as |",
            "| --- | --- | --- |",
            *platform_rows,
            "",
            "```bash",
            f"docker pull {ghcr}@{index}",
            f"gh attestation verify oci://{ghcr}@{index} --repo {repository}",
            *[
                f"gh attestation verify oci://{ghcr}@{out[platform.replace('/', '_')]} "
                f"--repo {repository} --predicate-type {SPDX}"
                for platform in p.digests
            ],
            "```",
            "",
        ]
    )


def run_command(command: Sequence[str]) -> str:
    print("promote-image: " + " ".join(command), flush=True)
    result = subprocess.run(  # noqa: S603 - a fixed docker argv; names validated by plan()
        list(command), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise PromoteError(f"{' '.join(command[:4])} failed: {result.stderr.strip()}")
    return result.stdout


def main() -> int:
    env = dict(os.environ)
    try:
        platforms = (env.get("PLATFORMS") or "linux/amd64 linux/arm64").split()
        digests = read_digests(env, platforms)
        p = plan(env, digests)
        out = promote(p, run_command)
    except PromoteError as exc:
        print(f"promote-image: error: {exc}", file=sys.stderr)
        return 1
    for key, value in out.items():
        print(f"promote-image: {key} = {value or '-'}")
    if env.get("NOTES_FILE"):
        Path(env["NOTES_FILE"]).write_text(
            notes(p, out, env.get("GITHUB_REPOSITORY", "OWNER/REPO")), encoding="utf-8"
        )
    step_outputs.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
