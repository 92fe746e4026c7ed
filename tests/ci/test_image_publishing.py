"""The image's publishing contract (docs/ci.md, "backend-image.yml"), checked offline:

* one artifact, promoted: each platform is built once; a build that pushes pushes by digest,
  never a tag; that digest is tested, then recorded and handed on; only the publish job tags,
  and only digests it downloaded from build jobs it waited for (and the scan);
* native multi-arch: linux/amd64 on ubuntu-24.04, linux/arm64 on ubuntu-24.04-arm, no QEMU;
* signed provenance and SBOM attestations in the publish job, with the permissions they need;
* a scan that fails on critical findings with a fix; a v* tag checked against the version;
* OCI labels the same in the Dockerfile and in metadata-action; a LICENSE that says MIT;
* base images pinned by digest.

Every checker returns violations, and each is fed a bad sample that it must reject.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.ci.workflows import ROOT, WORKFLOWS_DIR, jobs, lines, load, uses

IMAGE_WORKFLOW = WORKFLOWS_DIR / "backend-image.yml"
DOCKERFILE = ROOT / "packages" / "backend" / "Dockerfile"
NATIVE_RUNNERS = {"linux/amd64": "ubuntu-24.04", "linux/arm64": "ubuntu-24.04-arm"}
VERSION_EXPR = "${{ steps.version.outputs.version }}"
# ARG defaults that may stay tag-only, and why (docs/ci.md, "Pins that stay current").
UNPINNED_OK = {
    "UV_IMAGE": "no digest of ghcr.io/astral-sh/uv:0.13.9 could be checked here; "
    "Renovate's dockerfile rule (pinDigests) proposes it",
}


def image_workflow() -> dict[str, Any]:
    return load(IMAGE_WORKFLOW.read_text())


def output_options(outputs: object) -> dict[str, str]:
    """build-push-action's `outputs: type=image,name=...,push=true` as a dict."""
    options = {}
    for part in str(outputs or "").split(","):
        key, _, value = part.strip().partition("=")
        if key:
            options[key] = value
    return options


def needs(job: dict[str, Any]) -> list[str]:
    value = job.get("needs") or []
    return [value] if isinstance(value, str) else list(value)


def first(
    steps_: list[dict[str, Any]], predicate: Callable[[dict[str, Any]], bool], start: int = 0
) -> int | None:
    return next((i for i in range(start, len(steps_)) if predicate(steps_[i])), None)


def run_of(step: dict[str, Any]) -> str:
    return str(step.get("run", ""))


def running(command: str, digest: str) -> Callable[[dict[str, Any]], bool]:
    """A step predicate: runs `command` and gets `digest` (a step output) through its env."""
    return lambda s: command in run_of(s) and digest in json.dumps(s.get("env") or {})


# ------------------------------------------------------------------------------------------
# checkers
# ------------------------------------------------------------------------------------------
def promotion_violations(wf: dict[str, Any]) -> list[str]:
    """Push by digest, test that digest, tag only tested (and scanned) digests."""
    bad = []
    pushing, scanning = [], []
    for job_id, job in jobs(wf).items():
        steps_ = job.get("steps") or []
        if any(uses(s, "anchore/scan-action") for s in steps_):
            scanning.append(job_id)
        builds = [i for i, s in enumerate(steps_) if uses(s, "docker/build-push-action")]
        if len(builds) > 1:
            bad.append(f"{job_id}: builds {len(builds)} times (each platform is built once)")
        for i in builds:
            step, where = steps_[i], f"{job_id}.steps[{i}]"
            given = step.get("with") or {}
            if str(given.get("push", "")).lower() == "true":
                bad.append(f"{where}: push: true pushes its tags straight from the build")
            options = output_options(given.get("outputs"))
            if options.get("push") != "true":
                if str(given.get("load", "")).lower() != "true":
                    bad.append(f"{where}: neither loads the image for its tests nor pushes it")
                continue
            pushing.append(job_id)
            if options.get("push-by-digest") != "true":
                bad.append(f"{where}: pushes without push-by-digest=true")
            if "tags" in given:
                bad.append(f"{where}: a pushing build sets tags (only the publish job tags)")
            digest = f"steps.{step.get('id')}.outputs.digest"
            test = first(steps_, running("just image-verify", digest), i + 1)
            record = first(steps_, running("record_digest.py", digest), i + 1)
            hand_on = first(steps_, lambda s: uses(s, "actions/upload-artifact"), (record or i) + 1)
            if test is None:
                bad.append(f"{job_id}: no `just image-verify` of {digest} after the push")
            if record is None:
                bad.append(f"{job_id}: the pushed digest is never recorded")
            elif test is not None and record < test:
                bad.append(f"{job_id}: the digest is recorded before it is tested")
            if record is not None and hand_on is None:
                bad.append(f"{job_id}: the recorded digest is not handed on (upload-artifact)")
            last = max((j for j in (test, record, hand_on) if j is not None), default=i)
            for s in steps_[i + 1 : last + 1]:
                if s.get("continue-on-error") or "if" in s:
                    bad.append(f"{job_id}: a step between push and hand-on may be skipped")
    promoters = {
        job_id: job
        for job_id, job in jobs(wf).items()
        if any("promote_image.py" in run_of(s) for s in job.get("steps") or [])
    }
    if pushing and not promoters:
        bad.append("nothing tags the pushed digests")
    for job_id, job in promoters.items():
        steps_ = job["steps"]
        for waited in sorted(set(pushing + scanning) - set(needs(job))):
            bad.append(f"{job_id}: tags without waiting for {waited}")
        if any(uses(s, "docker/build-push-action") for s in steps_):
            bad.append(f"{job_id}: builds as well as tags")
        promote = first(steps_, lambda s: "promote_image.py" in run_of(s))
        fetch = first(steps_, lambda s: uses(s, "actions/download-artifact"))
        if fetch is None or promote is None or fetch > promote:
            bad.append(f"{job_id}: tags digests it did not download from the build jobs")
    return bad


def platform_violations(wf: dict[str, Any]) -> list[str]:
    """Every build runs natively: a matrix of platform -> its own runner, no emulation."""
    bad = []
    for job_id, job in jobs(wf).items():
        steps_ = job.get("steps") or []
        if any(uses(s, "docker/setup-qemu-action") for s in steps_):
            bad.append(f"{job_id}: QEMU emulation (build each platform on its own runner)")
        builds = [s for s in steps_ if uses(s, "docker/build-push-action")]
        if not builds:
            continue
        include = ((job.get("strategy") or {}).get("matrix") or {}).get("include") or []
        runners = {entry.get("platform"): entry.get("runner") for entry in include}
        if runners != NATIVE_RUNNERS:
            bad.append(f"{job_id}: platforms and runners {runners}, want {NATIVE_RUNNERS}")
        if job.get("runs-on") != "${{ matrix.runner }}":
            bad.append(f"{job_id}: runs-on {job.get('runs-on')!r}, not the platform's runner")
        for s in builds:
            if (s.get("with") or {}).get("platforms") != "${{ matrix.platform }}":
                bad.append(f"{job_id}: builds {s['with'].get('platforms')!r}, not one platform")
    return bad


def attestation_violations(wf: dict[str, Any]) -> list[str]:
    """Attestations: made in the job that has id-token/attestations, of pushed subjects."""
    bad = []
    for job_id, job in jobs(wf).items():
        steps_ = job.get("steps") or []
        attests = [s for s in steps_ if str(s.get("uses", "")).startswith("actions/attest")]
        permissions = job.get("permissions") or {}
        granted = isinstance(permissions, dict) and all(
            permissions.get(p) == "write" for p in ("id-token", "attestations")
        )
        if attests and not granted:
            bad.append(f"{job_id}: attests without id-token and attestations: write")
        if granted and not attests:
            bad.append(f"{job_id}: id-token/attestations: write but nothing is attested")
        for s in attests:
            given = s.get("with") or {}
            if str(given.get("push-to-registry", "")).lower() != "true":
                bad.append(f"{job_id}: an attestation is not pushed next to the image")
            if "steps.promote.outputs." not in str(given.get("subject-digest", "")):
                bad.append(f"{job_id}: attests a digest the promote step did not publish")
        kinds = {"sbom" if "sbom-path" in (s.get("with") or {}) else "provenance" for s in attests}
        if attests and kinds != {"sbom", "provenance"}:
            bad.append(f"{job_id}: attests {sorted(kinds)}, want provenance and sbom")
    return bad


def scan_violations(wf: dict[str, Any]) -> list[str]:
    bad = []
    scans = [
        (job_id, s)
        for job_id, job in jobs(wf).items()
        for s in job.get("steps") or []
        if uses(s, "anchore/scan-action")
    ]
    if not scans:
        return ["no vulnerability scan"]
    for job_id, s in scans:
        given = s.get("with") or {}
        want = {
            "fail-build": True,
            "severity-cutoff": "critical",
            "only-fixed": True,
            "output-format": "sarif",
        }
        for key, value in want.items():
            if given.get(key) != value:
                bad.append(f"{job_id}: scan {key}={given.get(key)!r}, want {value!r}")
        if not re.fullmatch(r"v\d+\.\d+\.\d+", str(given.get("grype-version", ""))):
            bad.append(f"{job_id}: grype-version not pinned")
        uploads = [
            u for u in jobs(wf)[job_id]["steps"] if uses(u, "github/codeql-action/upload-sarif")
        ]
        if not uploads or uploads[0].get("if") != "${{ !cancelled() }}":
            bad.append(f"{job_id}: the SARIF is not uploaded whatever the scan found")
    return bad


def release_violations(wf: dict[str, Any]) -> list[str]:
    """The v* tag is checked before anything is built; a release names the digests."""
    bad = []
    for job_id, job in jobs(wf).items():
        steps_ = job.get("steps") or []
        build = first(steps_, lambda s: uses(s, "docker/build-push-action"))
        if build is None:
            continue
        check = first(steps_, lambda s: "release_version.py" in run_of(s))
        if check is None or check > build:
            bad.append(f"{job_id}: builds before checking the tag against the version")

    def running(script: str) -> set[str]:
        return {
            job_id
            for job_id, job in jobs(wf).items()
            if any(script in run_of(s) for s in job.get("steps") or [])
        }

    releases, promoters = running("github_release.py"), running("promote_image.py")
    if not releases:
        bad.append("no GitHub Release for a v* tag")
    for job_id in sorted(releases):
        job = jobs(wf)[job_id]
        if job.get("if") != "startsWith(github.ref, 'refs/tags/v')":
            bad.append(f"{job_id}: releases on more than v* tags")
        if not promoters & set(needs(job)):
            bad.append(f"{job_id}: releases without waiting for the publish job")
    return bad


def dockerfile_labels(text: str) -> dict[str, str]:
    """The LABEL key="value" pairs of a Dockerfile (continuation lines joined)."""
    joined = re.sub(r"\\\n", " ", text)
    found = {}
    for line in joined.splitlines():
        if line.startswith("LABEL "):
            found |= dict(re.findall(r'([\w.-]+)="([^"]*)"', line))
    return found


def label_violations(dockerfile: str, wf: dict[str, Any]) -> list[str]:
    """metadata-action's labels and annotations say what the Dockerfile's labels say."""
    labels = dockerfile_labels(dockerfile)
    static = {k: v for k, v in labels.items() if "${" not in v}
    bad = []
    if labels.get("org.opencontainers.image.version") != "${VERSION}":
        bad.append("the Dockerfile's version label does not come from ARG VERSION")
    for job_id, job in jobs(wf).items():
        for i, step in enumerate(job.get("steps") or []):
            where = f"{job_id}.steps[{i}]"
            given = step.get("with") or {}
            if uses(step, "docker/metadata-action"):
                for field in ("labels", "annotations"):
                    if field not in given:
                        continue
                    pairs = dict(line.partition("=")[::2] for line in lines(given[field]))
                    for key, value in static.items():
                        if pairs.get(key) != value:
                            bad.append(
                                f"{where} {field}: {key}={pairs.get(key)!r}, "
                                f"the Dockerfile says {value!r}"
                            )
                    if pairs.get("org.opencontainers.image.version") != VERSION_EXPR:
                        bad.append(f"{where} {field}: version is not {VERSION_EXPR}")
            if uses(step, "docker/build-push-action"):
                args = lines(given.get("build-args"))
                for arg in (f"VERSION={VERSION_EXPR}", "REVISION=${{ github.sha }}"):
                    if arg not in args:
                        bad.append(f"{where}: build-arg {arg} missing")
                if given.get("labels") != "${{ steps.meta.outputs.labels }}":
                    bad.append(f"{where}: labels are not metadata-action's")
    return bad


def unpinned_image_args(dockerfile: str) -> dict[str, str]:
    """ARG *_IMAGE defaults without a sha256 digest."""
    return {
        name: ref
        for name, ref in re.findall(r"^ARG ([A-Z_]+_IMAGE)=(\S+)$", dockerfile, re.M)
        if not re.search(r"@sha256:[0-9a-f]{64}$", ref)
    }


# ------------------------------------------------------------------------------------------
# the real workflow and Dockerfile
# ------------------------------------------------------------------------------------------
def test_publishes_only_tested_digests() -> None:
    wf = image_workflow()
    assert promotion_violations(wf) == []
    assert [j for j, job in jobs(wf).items() if job.get("environment") == "publish-image"] == [
        "publish"
    ]


def test_each_platform_builds_on_its_own_runner() -> None:
    wf = image_workflow()
    assert platform_violations(wf) == []
    assert {"check", "build"} <= {
        job_id
        for job_id, job in jobs(wf).items()
        if any(uses(s, "docker/build-push-action") for s in job.get("steps") or [])
    }


def test_attestations_are_signed_in_the_publish_job_only() -> None:
    wf = image_workflow()
    assert attestation_violations(wf) == []
    granted = {
        job_id
        for job_id, job in jobs(wf).items()
        if isinstance(job.get("permissions"), dict)
        and {"id-token", "attestations"} & set(job["permissions"])
    }
    assert granted == {"publish"}


def test_scan_fails_on_fixable_critical_findings() -> None:
    assert scan_violations(image_workflow()) == []


def test_release_tag_is_checked_and_released() -> None:
    assert release_violations(image_workflow()) == []


def test_labels_agree_with_the_dockerfile() -> None:
    assert label_violations(DOCKERFILE.read_text(), image_workflow()) == []
    assert dockerfile_labels(DOCKERFILE.read_text())["org.opencontainers.image.licenses"] == "MIT"


def test_license_is_mit() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "boards developers" in text.splitlines()[2]


def test_base_image_is_pinned_by_digest() -> None:
    unpinned = unpinned_image_args(DOCKERFILE.read_text())
    assert "PYTHON_IMAGE" not in unpinned
    assert set(unpinned) <= set(UNPINNED_OK), unpinned


# ------------------------------------------------------------------------------------------
# the checkers reject bad samples
# ------------------------------------------------------------------------------------------
BAD_IMAGE_WORKFLOW = """\
on: push
permissions: {}
jobs:
  build:
    runs-on: ubuntu-24.04
    strategy:
      matrix:
        include:
          - {platform: linux/amd64, runner: ubuntu-24.04}
          - {platform: linux/arm64, runner: ubuntu-24.04}
    permissions:
      packages: write
      id-token: write
    steps:
      - uses: docker/setup-qemu-action@x
      - uses: docker/metadata-action@x
        with:
          labels: |
            org.opencontainers.image.title=boards
            org.opencontainers.image.version=1.0
      - run: python3 .github/scripts/record_digest.py
        env: {DIGEST: "${{ steps.push.outputs.digest }}"}
      - id: push
        uses: docker/build-push-action@x
        with:
          platforms: linux/amd64,linux/arm64
          push: true
          tags: ghcr.io/acme/boards-backend:edge
          outputs: type=image,name=ghcr.io/acme/boards-backend,push=true
          build-args: VERSION=1.0
      - run: uv run --locked just image-test
      - uses: docker/build-push-action@x
        with: {platforms: "${{ matrix.platform }}"}
      - uses: actions/attest@x
        with: {subject-digest: "${{ steps.push.outputs.digest }}"}
  scan:
    runs-on: ubuntu-24.04
    steps:
      - uses: anchore/scan-action@x
        with: {severity-cutoff: high, fail-build: false}
      - uses: github/codeql-action/upload-sarif@x
  publish:
    needs: build
    runs-on: ubuntu-24.04
    permissions: {packages: write}
    steps:
      - run: python3 .github/scripts/promote_image.py
      - uses: actions/download-artifact@x
      - uses: actions/attest@x
        with: {subject-digest: "${{ steps.promote.outputs.ghcr_digest }}"}
"""


def test_promotion_checker_rejects_bad_sample() -> None:
    text = "\n".join(promotion_violations(load(BAD_IMAGE_WORKFLOW)))
    for message in (
        "build: builds 2 times",
        "push: true pushes its tags",
        "pushes without push-by-digest=true",
        "a pushing build sets tags",
        "no `just image-verify` of steps.push.outputs.digest",
        "the pushed digest is never recorded",  # the record step comes before the push
        "neither loads the image for its tests nor pushes it",
        "publish: tags without waiting for scan",
        "publish: tags digests it did not download",
    ):
        assert message in text, f"{message!r} not in:\n{text}"


def test_promotion_checker_rejects_recording_before_testing() -> None:
    wf = load(
        """\
jobs:
  build:
    steps:
      - id: push
        uses: docker/build-push-action@x
        with: {outputs: "type=image,push-by-digest=true,push=true"}
      - run: python3 .github/scripts/record_digest.py
        env: {DIGEST: "${{ steps.push.outputs.digest }}"}
      - run: uv run --locked just image-verify "$BOARDS_TEST_IMAGE"
        continue-on-error: true
        env: {BOARDS_TEST_IMAGE: "x@${{ steps.push.outputs.digest }}"}
"""
    )
    text = "\n".join(promotion_violations(wf))
    assert "recorded before it is tested" in text
    assert "not handed on" in text
    assert "a step between push and hand-on may be skipped" in text  # continue-on-error
    assert "nothing tags the pushed digests" in text


def test_platform_checker_rejects_bad_sample() -> None:
    text = "\n".join(platform_violations(load(BAD_IMAGE_WORKFLOW)))
    assert "build: QEMU emulation" in text
    assert "'linux/arm64': 'ubuntu-24.04'" in text
    assert "runs-on 'ubuntu-24.04', not the platform's runner" in text
    assert "builds 'linux/amd64,linux/arm64', not one platform" in text


def test_attestation_checker_rejects_bad_sample() -> None:
    text = "\n".join(attestation_violations(load(BAD_IMAGE_WORKFLOW)))
    assert "build: attests without id-token and attestations: write" in text
    assert "build: attests a digest the promote step did not publish" in text
    assert "publish: attests without id-token and attestations: write" in text
    assert "an attestation is not pushed next to the image" in text
    assert "attests ['provenance'], want provenance and sbom" in text


def test_scan_checker_rejects_bad_sample() -> None:
    text = "\n".join(scan_violations(load(BAD_IMAGE_WORKFLOW)))
    assert "scan severity-cutoff='high', want 'critical'" in text
    assert "scan fail-build=False, want True" in text
    assert "scan only-fixed=None, want True" in text
    assert "grype-version not pinned" in text
    assert "SARIF is not uploaded whatever the scan found" in text
    assert scan_violations({"jobs": {}}) == ["no vulnerability scan"]


def test_release_checker_rejects_bad_sample() -> None:
    text = "\n".join(release_violations(load(BAD_IMAGE_WORKFLOW)))
    assert "build: builds before checking the tag against the version" in text
    assert "no GitHub Release for a v* tag" in text
    early = load(
        """\
jobs:
  publish:
    steps: [{run: python3 .github/scripts/promote_image.py}]
  release:
    needs: build
    steps: [{run: python3 .github/scripts/github_release.py}]
"""
    )
    text = "\n".join(release_violations(early))
    assert "release: releases on more than v* tags" in text
    assert "release: releases without waiting for the publish job" in text


def test_label_checker_rejects_bad_sample() -> None:
    text = "\n".join(label_violations(DOCKERFILE.read_text(), load(BAD_IMAGE_WORKFLOW)))
    assert "org.opencontainers.image.title='boards', the Dockerfile says 'boards-backend'" in text
    assert "org.opencontainers.image.licenses=None, the Dockerfile says 'MIT'" in text
    assert f"version is not {VERSION_EXPR}" in text
    assert "build-arg VERSION=" in text and "labels are not metadata-action's" in text
    other = DOCKERFILE.read_text().replace('version="${VERSION}"', 'version="1.0"')
    assert "does not come from ARG VERSION" in "\n".join(label_violations(other, {"jobs": {}}))


@pytest.mark.parametrize(
    ("dockerfile", "unpinned"),
    [
        ("ARG PYTHON_IMAGE=python:3.12-slim\n", {"PYTHON_IMAGE": "python:3.12-slim"}),
        (
            "ARG PYTHON_IMAGE=python:3.12-slim@sha256:abc\n",
            {"PYTHON_IMAGE": "python:3.12-slim@sha256:abc"},
        ),
        ("ARG PYTHON_IMAGE=python:3.12-slim@sha256:" + "a" * 64 + "\n", {}),
    ],
)
def test_pin_checker_rejects_tag_only_images(dockerfile: str, unpinned: dict[str, str]) -> None:
    assert unpinned_image_args(dockerfile) == unpinned
