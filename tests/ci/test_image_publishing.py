"""The image's publishing contract (docs/ci.md, "backend-image.yml"), checked offline:

* one artifact, promoted: each platform is built once; a build that pushes pushes by digest,
  never a tag, and hands the digest on as the build action's output; a job that cannot write
  tests that digest; only the publish job tags, only those outputs, after the tests and scans;
* no test code (dev tools, tests, local actions) in a job that can push or sign, and no build
  cache written next to test code; no shared build cache on a tag;
* `latest`, the major and the minor tag move only as release_series.py says;
* native multi-arch: linux/amd64 on ubuntu-24.04, linux/arm64 on ubuntu-24.04-arm, no QEMU;
* signed provenance (of the index) and SBOM (of each platform's image manifest) attestations in
  the publish job, with the permissions they need, naming digests the published index lists;
* a scan that fails on critical findings with a fix; a v* tag checked against the version;
* OCI labels the same in the Dockerfile and in metadata-action; a LICENSE that says MIT;
* base images pinned by digest.

Every checker returns violations, and each is fed a bad sample that it must reject.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.ci.workflows import (
    ROOT,
    WORKFLOWS_DIR,
    assert_reports,
    job_steps,
    jobs,
    lines,
    load,
    uses,
)

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


# ------------------------------------------------------------------------------------------
# checkers
# ------------------------------------------------------------------------------------------
# What only a job that runs the project's tests or dev tools does.
TEST_CODE = re.compile(r"(?:^|\s)(?:uv|uvx|just|pytest|pip|poe)\s")
CREDENTIALS = ("packages", "id-token", "attestations")


def runs_test_code(job: dict[str, Any]) -> bool:
    return any(
        uses(s, "astral-sh/setup-uv")
        or str(s.get("uses", "")).startswith("./")
        or TEST_CODE.search(f" {run_of(s)} ")
        for s in job.get("steps") or []
    )


def pushing_builds(job: dict[str, Any]) -> list[int]:
    return [
        i
        for i, s in enumerate(job.get("steps") or [])
        if uses(s, "docker/build-push-action")
        and output_options((s.get("with") or {}).get("outputs")).get("push") == "true"
    ]


def arches(job: dict[str, Any]) -> list[str]:
    include = ((job.get("strategy") or {}).get("matrix") or {}).get("include") or []
    return [str(entry.get("platform", "")).removeprefix("linux/") for entry in include]


def isolation_violations(wf: dict[str, Any]) -> list[str]:
    """A job that can push, tag or sign runs no test code (dev tools, tests, local actions);
    a job that runs test code can write no package, sign nothing and writes no build cache."""
    bad = []
    for job_id, job in jobs(wf).items():
        permissions = job.get("permissions") or {}
        writes = (
            {p for p in CREDENTIALS if permissions.get(p) == "write"}
            if isinstance(permissions, dict)
            else set(CREDENTIALS)
        )
        steps_ = job.get("steps") or []
        if writes and runs_test_code(job):
            bad.append(f"{job_id}: runs test code with {sorted(writes)}: write")
        if runs_test_code(job):
            for i, s in enumerate(steps_):
                if uses(s, "docker/build-push-action") and (s.get("with") or {}).get("cache-to"):
                    bad.append(f"{job_id}.steps[{i}]: writes the build cache next to test code")
        login = first(steps_, lambda s: uses(s, "docker/login-action"))
        if pushing_builds(job) and login is not None:
            for i, s in enumerate(steps_[login:], login):
                if "run" in s:
                    bad.append(f"{job_id}.steps[{i}]: runs a command after the push login")
    return bad


def promotion_violations(wf: dict[str, Any]) -> list[str]:
    """Push by digest, hand the digest on as the build action's output, test that digest in a
    job that cannot write, tag only those digests once the tests and scans passed."""
    bad = []
    pushing: dict[str, list[str]] = {}  # job -> its platforms' arches
    for job_id, job, steps_ in job_steps(wf):
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
            if options.get("push-by-digest") != "true":
                bad.append(f"{where}: pushes without push-by-digest=true")
            if "tags" in given:
                bad.append(f"{where}: a pushing build sets tags (only the publish job tags)")
            digest = f"steps.{step.get('id')}.outputs.digest"
            outputs = job.get("outputs") or {}
            pushing[job_id] = arches(job)
            for arch in pushing[job_id]:
                want = f"${{{{ matrix.arch == '{arch}' && {digest} || '' }}}}"
                if outputs.get(f"digest_{arch}") != want:
                    bad.append(f"{job_id}: output digest_{arch} is not {want}")
    for build, build_arches in pushing.items():
        testers = [
            job_id
            for job_id, job in jobs(wf).items()
            if build in needs(job)
            and any("just image-verify" in run_of(s) for s in job.get("steps") or [])
        ]
        if not testers:
            bad.append(f"no job tests the digests {build} pushed (`just image-verify`)")
        for job_id in testers:
            job = jobs(wf)[job_id]
            include = ((job.get("strategy") or {}).get("matrix") or {}).get("include") or []
            given = {
                str(entry.get("platform", "")).removeprefix("linux/"): entry.get("digest")
                for entry in include
            }
            want = {
                arch: f"${{{{ needs.{build}.outputs.digest_{arch} }}}}" for arch in build_arches
            }
            if given != want:
                bad.append(f"{job_id}: tests digests {given}, not {build}'s outputs {want}")
            image = (job.get("env") or {}).get("BOARDS_TEST_IMAGE")
            if image != f"${{{{ needs.{build}.outputs.image }}}}@${{{{ matrix.digest }}}}":
                bad.append(f"{job_id}: BOARDS_TEST_IMAGE {image!r} is not the pushed digest")
            for s in job.get("steps") or []:
                if "just image-verify" in run_of(s) and (s.get("continue-on-error") or "if" in s):
                    bad.append(f"{job_id}: the image tests may be skipped")
    scanning = [
        job_id
        for job_id, job in jobs(wf).items()
        if any(uses(s, "anchore/scan-action") for s in job.get("steps") or [])
    ]
    promoters = {
        job_id: job
        for job_id, job in jobs(wf).items()
        if any("promote_image.py" in run_of(s) for s in job.get("steps") or [])
    }
    if pushing and not promoters:
        bad.append("nothing tags the pushed digests")
    testing = [
        job_id
        for job_id, job in jobs(wf).items()
        if set(pushing) & set(needs(job))
        and any("just image-verify" in run_of(s) for s in job.get("steps") or [])
    ]
    for job_id, job in promoters.items():
        steps_ = job["steps"]
        for waited in sorted(set(pushing) | set(scanning) | set(testing)):
            if waited not in needs(job):
                bad.append(f"{job_id}: tags without waiting for {waited}")
        if any(uses(s, "docker/build-push-action") for s in steps_):
            bad.append(f"{job_id}: builds as well as tags")
        promote = next(s for s in steps_ if "promote_image.py" in run_of(s))
        env = promote.get("env") or {}
        for build, build_arches in pushing.items():
            if env.get("SOURCE_IMAGE") != f"${{{{ needs.{build}.outputs.image }}}}":
                bad.append(f"{job_id}: SOURCE_IMAGE is not {build}'s image output")
            for arch in build_arches:
                want = f"${{{{ needs.{build}.outputs.digest_{arch} }}}}"
                if env.get(f"DIGEST_LINUX_{arch.upper()}") != want:
                    bad.append(f"{job_id}: DIGEST_LINUX_{arch.upper()} is not {want}")
        if "DIGESTS_DIR" in env:
            bad.append(f"{job_id}: reads digests from files (DIGESTS_DIR), not the build outputs")
    for job_id, job in jobs(wf).items():
        # Any job of the run can upload an artifact under a given name; an id is the build's.
        for i, s in enumerate(job.get("steps") or []):
            if not uses(s, "actions/download-artifact"):
                continue
            ids = str((s.get("with") or {}).get("artifact-ids", ""))
            if not re.fullmatch(
                r"(?:,?\$\{\{ (?:needs\.\w+\.outputs\.\w+|matrix\.sbom) \}\})+", ids
            ):
                bad.append(f"{job_id}.steps[{i}]: downloads by name, not the build's artifact ids")
    for build, build_arches in pushing.items():
        job = jobs(wf)[build]
        upload = next((s for s in job["steps"] if uses(s, "actions/upload-artifact")), {"id": None})
        for arch in build_arches:
            artifact = f"steps.{upload.get('id')}.outputs.artifact-id"
            want = f"${{{{ matrix.arch == '{arch}' && {artifact} || '' }}}}"
            if (job.get("outputs") or {}).get(f"sbom_{arch}") != want:
                bad.append(f"{build}: output sbom_{arch} is not {want}")
    return bad


TAG_REF = "startsWith(github.ref, 'refs/tags/')"


def cache_violations(wf: dict[str, Any]) -> list[str]:
    """A build that pushes uses no shared build cache on a tag (a release builds from scratch)."""
    bad = []
    for job_id, job in jobs(wf).items():
        for i in pushing_builds(job):
            given = job["steps"][i].get("with") or {}
            where = f"{job_id}.steps[{i}]"
            for key in ("cache-from", "cache-to"):
                value = str(given.get(key) or "")
                guarded = re.fullmatch(
                    rf"\$\{{\{{ !{re.escape(TAG_REF)} && .+ \|\| '' \}}\}}", value
                )
                if value and not guarded:
                    bad.append(f"{where}: {key} {value!r} is used on tag builds too")
            if str(given.get("no-cache")) != f"${{{{ {TAG_REF} }}}}":
                bad.append(f"{where}: no-cache is not ${{{{ {TAG_REF} }}}}")
    return bad


def moving_tag_violations(wf: dict[str, Any]) -> list[str]:
    """`latest`, the major and the minor tag move only as release_series.py says (the highest
    release of its series); GitHub's "latest" release follows the same answer."""
    bad = []
    for job_id, job, steps_ in job_steps(wf):
        for i, step in enumerate(steps_):
            if not uses(step, "docker/metadata-action"):
                continue
            given = step.get("with") or {}
            if not any("type=semver" in line for line in lines(given.get("tags"))):
                continue
            where = f"{job_id}.steps[{i}]"
            series = first(steps_, lambda s: "release_series.py" in run_of(s))
            if series is None or series > i:
                bad.append(f"{where}: no release_series.py step before the tags")
                continue
            sid = steps_[series].get("id")
            if f"latest=${{{{ steps.{sid}.outputs.latest }}}}" not in lines(given.get("flavor")):
                bad.append(f"{where}: latest is not steps.{sid}.outputs.latest (latest=auto)")
            for line in lines(given.get("tags")):
                kind = re.search(r"pattern=([^,]+)", line)
                if not kind or kind[1] not in ("{{major}}", "{{major}}.{{minor}}"):
                    continue
                part = "major" if kind[1] == "{{major}}" else "minor"
                want = f"enable=${{{{ steps.{sid}.outputs.{part} == 'true' }}}}"
                if not line.endswith("," + want):
                    bad.append(f"{where}: {line!r} does not end with {want}")
            if (job.get("outputs") or {}).get("latest") != f"${{{{ steps.{sid}.outputs.latest }}}}":
                bad.append(f"{job_id}: no `latest` output for the release job")
            for other_id, other in jobs(wf).items():
                for s in other.get("steps") or []:
                    if "github_release.py" in run_of(s):
                        latest = (s.get("env") or {}).get("LATEST")
                        if latest != f"${{{{ needs.{job_id}.outputs.latest }}}}":
                            bad.append(f"{other_id}: LATEST is not needs.{job_id}.outputs.latest")
    return bad


def platform_violations(wf: dict[str, Any]) -> list[str]:
    """Every build runs natively: a matrix of platform -> its own runner, no emulation."""
    bad = []
    for job_id, job, steps_ in job_steps(wf):
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
    for job_id, job, steps_ in job_steps(wf):
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
            subject = str(given.get("subject-digest", ""))
            # The index (provenance) and each platform's image manifest (SBOM): the digests the
            # promote step read back from the published index.
            want = "linux_" if "sbom-path" in given else "_digest"
            if not re.fullmatch(rf"\$\{{\{{ steps\.promote\.outputs\.\w*{want}\w* \}}\}}", subject):
                bad.append(f"{job_id}: attests {subject!r}, not a digest the published index lists")
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
    for job_id, _, steps_ in job_steps(wf):
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
    assert {"build", "test", "publish"} <= set(jobs(wf))
    assert [j for j, job in jobs(wf).items() if job.get("environment") == "publish-image"] == [
        "publish"
    ]


def test_no_test_code_where_a_credential_can_push_or_sign() -> None:
    wf = image_workflow()
    assert isolation_violations(wf) == []
    assert runs_test_code(jobs(wf)["test"]) and not runs_test_code(jobs(wf)["build"])
    assert jobs(wf)["test"]["permissions"] == {"contents": "read", "packages": "read"}


def test_release_builds_use_no_shared_cache() -> None:
    wf = image_workflow()
    assert cache_violations(wf) == []
    assert pushing_builds(jobs(wf)["build"]), "the build job pushes"


def test_only_the_highest_release_moves_latest_and_the_major_tag() -> None:
    wf = image_workflow()
    assert moving_tag_violations(wf) == []
    meta = [s for s in jobs(wf)["publish"]["steps"] if uses(s, "docker/metadata-action")]
    assert len(meta) == 1 and "type=semver" in meta[0]["with"]["tags"]


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
    outputs:
      digest_amd64: ${{ steps.push.outputs.digest }}
    steps:
      - uses: docker/setup-qemu-action@x
      - uses: docker/metadata-action@x
        with:
          labels: |
            org.opencontainers.image.title=boards
            org.opencontainers.image.version=1.0
      - uses: docker/login-action@x
      - id: push
        uses: docker/build-push-action@x
        with:
          platforms: linux/amd64,linux/arm64
          push: true
          tags: ghcr.io/acme/boards-backend:edge
          outputs: type=image,name=ghcr.io/acme/boards-backend,push=true
          build-args: VERSION=1.0
          cache-to: type=gha,mode=max
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
      - uses: actions/download-artifact@x
      - run: python3 .github/scripts/promote_image.py
        env: {DIGESTS_DIR: image}
      - uses: actions/attest@x
        with: {subject-digest: "${{ steps.promote.outputs.ghcr_digest }}"}
"""


def mutated(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    """The real workflow with one change: a bad sample that differs in one rule only."""
    wf = copy.deepcopy(image_workflow())
    change(jobs(wf))
    return wf


def step_running(job: dict[str, Any], text: str) -> dict[str, Any]:
    return next(s for s in job["steps"] if text in run_of(s) or text in str(s.get("uses")))


# What each checker must find in BAD_IMAGE_WORKFLOW.
BAD_SAMPLE_FINDINGS: list[tuple[Callable[[dict[str, Any]], list[str]], list[str]]] = [
    (
        promotion_violations,
        [
            "build: builds 2 times",
            "push: true pushes its tags",
            "pushes without push-by-digest=true",
            "a pushing build sets tags",
            "build: output digest_amd64 is not "
            "${{ matrix.arch == 'amd64' && steps.push.outputs.digest",
            "no job tests the digests build pushed",
            "neither loads the image for its tests nor pushes it",
            "publish: tags without waiting for scan",
            "publish: SOURCE_IMAGE is not build's image output",
            "publish: DIGEST_LINUX_AMD64 is not ${{ needs.build.outputs.digest_amd64 }}",
            "publish: reads digests from files (DIGESTS_DIR)",
            "publish.steps[0]: downloads by name, not the build's artifact ids",
        ],
    ),
    (
        isolation_violations,
        [
            "build: runs test code with ['id-token', 'packages']: write",
            "build.steps[4]: runs a command after the push login",
            "writes the build cache next to test code",
        ],
    ),
    (cache_violations, ["cache-to 'type=gha,mode=max' is used on tag builds too"]),
    (
        platform_violations,
        [
            "build: QEMU emulation",
            "'linux/arm64': 'ubuntu-24.04'",
            "runs-on 'ubuntu-24.04', not the platform's runner",
            "builds 'linux/amd64,linux/arm64', not one platform",
        ],
    ),
    (
        attestation_violations,
        [
            "build: attests without id-token and attestations: write",
            "build: attests '${{ steps.push.outputs.digest }}', not a digest the published",
            "publish: attests without id-token and attestations: write",
            "an attestation is not pushed next to the image",
            "attests ['provenance'], want provenance and sbom",
        ],
    ),
    (
        scan_violations,
        [
            "scan severity-cutoff='high', want 'critical'",
            "scan fail-build=False, want True",
            "scan only-fixed=None, want True",
            "grype-version not pinned",
            "SARIF is not uploaded whatever the scan found",
        ],
    ),
    (
        release_violations,
        [
            "build: builds before checking the tag against the version",
            "no GitHub Release for a v* tag",
        ],
    ),
    (
        lambda wf: label_violations(DOCKERFILE.read_text(), wf),
        [
            "org.opencontainers.image.title='boards', the Dockerfile says 'boards-backend'",
            "org.opencontainers.image.licenses=None, the Dockerfile says 'MIT'",
            f"version is not {VERSION_EXPR}",
            "build-arg VERSION=",
            "labels are not metadata-action's",
        ],
    ),
]


@pytest.mark.parametrize(
    ("checker", "messages"),
    BAD_SAMPLE_FINDINGS,
    ids=["promotion", "isolation", "cache", "platform", "attestation", "scan", "release", "label"],
)
def test_checker_rejects_bad_sample(
    checker: Callable[[dict[str, Any]], list[str]], messages: list[str]
) -> None:
    assert_reports(checker(load(BAD_IMAGE_WORKFLOW)), *messages)


def _swap_test_digests(j: dict[str, Any]) -> None:
    include = j["test"]["strategy"]["matrix"]["include"]
    include[0]["digest"], include[1]["digest"] = include[1]["digest"], include[0]["digest"]


def _cache_to_in_check(j: dict[str, Any]) -> None:
    step_running(j["check"], "docker/build-push-action")["with"].update(
        {"cache-to": "type=gha,mode=max"}
    )


def _meta(j: dict[str, Any]) -> dict[str, Any]:
    with_: dict[str, Any] = step_running(j["publish"], "docker/metadata-action")["with"]
    return with_


# A checker, one change to the real workflow, and what the checker must then report (None:
# nothing).
@pytest.mark.parametrize(
    ("checker", "change", "message"),
    [
        (
            promotion_violations,
            lambda j: j["test"]["steps"].pop(),
            None,
        ),  # the inspect step: still fine
        (
            promotion_violations,
            lambda j: j["publish"]["needs"].remove("test"),
            "publish: tags without waiting for test",
        ),
        (promotion_violations, _swap_test_digests, "test: tests digests"),
        (
            promotion_violations,
            lambda j: j["test"]["env"].update(BOARDS_TEST_IMAGE="boards-backend:test"),
            "test: BOARDS_TEST_IMAGE 'boards-backend:test' is not the pushed digest",
        ),
        (
            promotion_violations,
            lambda j: step_running(j["test"], "image-verify").update({"continue-on-error": True}),
            "test: the image tests may be skipped",
        ),
        (
            promotion_violations,
            lambda j: step_running(j["publish"], "promote_image.py")["env"].update(
                DIGEST_LINUX_ARM64="${{ needs.test.outputs.digest_arm64 }}"
            ),
            "publish: DIGEST_LINUX_ARM64 is not ${{ needs.build.outputs.digest_arm64 }}",
        ),
        (
            promotion_violations,
            lambda j: j["build"]["outputs"].update(digest_arm64="${{ steps.push.outputs.digest }}"),
            "build: output digest_arm64 is not",
        ),
        (promotion_violations, lambda j: j.pop("test"), "no job tests the digests build pushed"),
        (
            promotion_violations,
            lambda j: step_running(j["publish"], "actions/download-artifact")["with"].update(
                {"artifact-ids": None, "pattern": "sbom-linux-*"}
            ),
            "publish.steps[1]: downloads by name, not the build's artifact ids",
        ),
        (
            promotion_violations,
            lambda j: j["build"]["outputs"].pop("sbom_arm64"),
            "build: output sbom_arm64 is not ${{ matrix.arch == 'arm64' && steps.sbom.outputs",
        ),
        (
            isolation_violations,
            lambda j: j["build"]["steps"].append({"run": "uv sync --locked"}),
            "build: runs test code with ['packages']: write",
        ),
        (
            isolation_violations,
            lambda j: j["build"]["steps"].append({"run": "python3 .github/scripts/x.py"}),
            "runs a command after the push login",
        ),
        (
            isolation_violations,
            lambda j: j["publish"]["steps"].insert(1, {"uses": "astral-sh/setup-uv@x"}),
            "publish: runs test code with ['attestations', 'id-token', 'packages']: write",
        ),
        (
            isolation_violations,
            lambda j: j["test"]["permissions"].update(packages="write"),
            "test: runs test code with ['packages']: write",
        ),
        (
            isolation_violations,
            lambda j: j["test"].update(permissions="write-all"),
            "test: runs test code with ['attestations', 'id-token', 'packages']: write",
        ),
        (
            isolation_violations,
            lambda j: j["publish"]["steps"].append({"uses": "./.github/actions/local"}),
            "publish: runs test code",
        ),
        (isolation_violations, _cache_to_in_check, "check.steps["),
        (isolation_violations, _cache_to_in_check, "writes the build cache next to test code"),
        (
            cache_violations,
            lambda j: step_running(j["build"], "docker/build-push-action")["with"].update(
                {"cache-from": "type=gha,scope=boards-backend-amd64"}
            ),
            "cache-from 'type=gha,scope=boards-backend-amd64' is used on tag builds too",
        ),
        (
            cache_violations,
            lambda j: step_running(j["build"], "docker/build-push-action")["with"].update(
                {"cache-to": "${{ github.ref == 'refs/heads/main' && 'type=gha' || 'type=gha' }}"}
            ),
            "cache-to",
        ),
        (
            cache_violations,
            lambda j: step_running(j["build"], "docker/build-push-action")["with"].pop("no-cache"),
            "no-cache is not",
        ),
        (
            moving_tag_violations,
            lambda j: _meta(j).pop("flavor"),
            "latest is not steps.series.outputs.latest",
        ),
        (
            moving_tag_violations,
            lambda j: _meta(j).update(
                tags=_meta(j)["tags"].replace(
                    ",enable=${{ steps.series.outputs.major == 'true' }}", ""
                )
            ),
            "'type=semver,pattern={{major}}' does not end with enable=",
        ),
        (
            moving_tag_violations,
            lambda j: _meta(j).update(
                tags=_meta(j)["tags"].replace(
                    "steps.series.outputs.minor", "steps.series.outputs.major"
                )
            ),
            "pattern={{major}}.{{minor}},enable=${{ steps.series.outputs.major == 'true' }}\"",
        ),
        (
            moving_tag_violations,
            lambda j: j["publish"]["steps"].remove(step_running(j["publish"], "release_series")),
            "no release_series.py step before the tags",
        ),
        (
            moving_tag_violations,
            lambda j: j["publish"].pop("outputs"),
            "publish: no `latest` output",
        ),
        (
            moving_tag_violations,
            lambda j: step_running(j["release"], "github_release.py")["env"].pop("LATEST"),
            "release: LATEST is not needs.publish.outputs.latest",
        ),
    ],
)
def test_checker_rejects_one_change(
    checker: Callable[[dict[str, Any]], list[str]],
    change: Callable[[dict[str, Any]], object],
    message: str | None,
) -> None:
    violations = checker(mutated(change))
    if message is None:
        assert violations == []
    else:
        assert_reports(violations, message)


def test_scan_checker_rejects_a_workflow_without_a_scan() -> None:
    assert scan_violations({"jobs": {}}) == ["no vulnerability scan"]


def test_release_checker_rejects_an_early_release() -> None:
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
    assert_reports(
        release_violations(early),
        "release: releases on more than v* tags",
        "release: releases without waiting for the publish job",
    )


def test_label_checker_wants_the_version_label_from_arg_version() -> None:
    other = DOCKERFILE.read_text().replace('version="${VERSION}"', 'version="1.0"')
    assert_reports(label_violations(other, {"jobs": {}}), "does not come from ARG VERSION")


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
