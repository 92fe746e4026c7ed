"""The CI helper scripts in .github/scripts: member discovery, registries, the gate job."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / ".github" / "scripts"


def script(name: str) -> ModuleType:
    if str(SCRIPTS) not in sys.path:  # as `python3 .github/scripts/NAME.py` has it
        sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(f"ci_{name}", SCRIPTS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up
    spec.loader.exec_module(module)
    return module


def run_on_tag(
    main: Callable[[], int], tag: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str]:
    """A release script's `main()` as a tag push runs it: its exit code and its step outputs."""
    output = tmp_path / "out"
    output.unlink(missing_ok=True)
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    monkeypatch.setenv("GITHUB_REF", f"refs/tags/{tag}")
    code = main()
    return code, output.read_text() if output.exists() else ""


discover = script("discover_packages")
registries = script("image_registries")
gate = script("require_success")

TASKS = """
[tool.poe.tasks]
lint = "ruff check ."
typecheck = "mypy src"
test = "pytest tests"
"""


# ------------------------------------------------------------------------------------------
# discover_packages.py
# ------------------------------------------------------------------------------------------
def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


def write_member(repo: Path, directory: str, name: str, extra: str = "") -> None:
    path = repo / "packages" / directory
    path.mkdir(parents=True, exist_ok=True)
    (path / "pyproject.toml").write_text(f'[project]\nname = "{name}"\n{extra}\n{TASKS}')
    (path / "code.py").write_text("x = 1\n")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    repo = tmp_path / "ws"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "ci@example.invalid")
    git(repo, "config", "user.name", "ci")
    git(repo, "config", "commit.gpgsign", "false")
    (repo / "pyproject.toml").write_text('[project]\nname = "root"\n')
    (repo / "uv.lock").write_text("version = 1\n")
    (repo / "README.md").write_text("readme\n")
    write_member(repo, "backend", "boards-backend", 'dependencies = ["fastapi"]')
    write_member(repo, "client", "boards-client", 'dependencies = ["httpx"]')
    write_member(
        repo,
        "testing",
        "boards-testing",
        '[project.entry-points.pytest11]\nboards = "boards_testing.plugin"',
    )
    write_member(repo, "cli", "boards-cli", 'dependencies = ["boards-client>=0.1"]')
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    return repo


def changed_dirs(repo: Path, *paths: str) -> list[str]:
    """Commit a change to paths, then run the discovery as a pull request would."""
    for rel in paths:
        target = repo / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(target.read_text() + "# change\n" if target.exists() else "new\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "change")
    members = discover.load_members(repo)
    return [m.dir for m in discover.select(members, discover.changed_files(repo, "HEAD^1"))]


def test_discovers_every_member_sorted(workspace: Path) -> None:
    members = discover.load_members(workspace)
    assert [(m.dir, m.name) for m in members] == [
        ("backend", "boards-backend"),
        ("cli", "boards-cli"),
        ("client", "boards-client"),
        ("testing", "boards-testing"),
    ]


def test_a_new_member_is_picked_up_without_registration(workspace: Path) -> None:
    write_member(workspace, "newpkg", "boards-new")
    assert changed_dirs(workspace, "packages/newpkg/code.py") == ["newpkg"]


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["packages/backend/code.py"], ["backend"]),
        (["README.md"], []),
        (["packages/client/code.py"], ["cli", "client"]),  # boards-cli depends on it
        (["packages/testing/code.py"], ["backend", "cli", "client", "testing"]),  # pytest plugin
        (["uv.lock"], ["backend", "cli", "client", "testing"]),
        (["pyproject.toml"], ["backend", "cli", "client", "testing"]),
        (["justfile"], ["backend", "cli", "client", "testing"]),
        ([".python-version"], ["backend", "cli", "client", "testing"]),
        ([".github/workflows/packages.yml"], ["backend", "cli", "client", "testing"]),
        ([".github/scripts/require_success.py"], ["backend", "cli", "client", "testing"]),
        (["tools/ci/member-check.sh"], ["backend", "cli", "client", "testing"]),
        ([".github/workflows/backend-image.yml"], []),
    ],
)
def test_pull_request_selects_changed_members(
    workspace: Path, paths: list[str], expected: list[str]
) -> None:
    assert changed_dirs(workspace, *paths) == expected


def test_main_writes_github_output_for_all_on_push(
    workspace: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    output = tmp_path / "out"
    output.write_text("")
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    assert discover.main(["--root", str(workspace), "--event", "push"]) == 0
    line = output.read_text().strip()
    assert line.startswith("packages=")
    assert [m["dir"] for m in json.loads(line.removeprefix("packages="))] == [
        "backend",
        "cli",
        "client",
        "testing",
    ]
    assert json.loads(capsys.readouterr().out)[0] == {"dir": "backend", "name": "boards-backend"}


def test_main_on_pull_request_with_no_member_change_prints_empty(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workspace / "README.md").write_text("changed\n")
    git(workspace, "commit", "-qam", "docs")
    assert discover.main(["--root", str(workspace), "--event", "pull_request"]) == 0
    assert capsys.readouterr().out.strip() == "[]"


@pytest.mark.parametrize(
    ("directory", "pyproject", "message"),
    [
        ("Bad$(id)", '[project]\nname = "x"\n' + TASKS, "must match"),
        ("ok", "[project]\n" + TASKS, "no valid [project] name"),
        ("ok", '[project]\nname = "a b"\n' + TASKS, "no valid [project] name"),
        ("ok", '[project]\nname = "x"\n', "lacks poe task(s) lint, typecheck, test"),
        ("ok", "[project\n", "pyproject.toml"),
    ],
)
def test_bad_members_fail_with_a_clear_message(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    directory: str,
    pyproject: str,
    message: str,
) -> None:
    member = tmp_path / "packages" / directory
    member.mkdir(parents=True)
    (member / "pyproject.toml").write_text(pyproject)
    assert discover.main(["--root", str(tmp_path), "--event", "push"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("discover-packages: error: ") and message in err


def test_git_failure_is_reported(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--root", str(workspace), "--event", "pull_request", "--base", "no-such-rev"]
    assert discover.main(argv) == 2
    assert "git diff against no-such-rev failed" in capsys.readouterr().err


def test_this_workspace_members_are_ready_for_ci() -> None:
    """Every real member defines the poe tasks `just lint-package`/`test-package` run."""
    members = discover.load_members(ROOT)
    dirs = {m.dir for m in members}
    assert {"backend", "client", "testing"} <= dirs
    assert {m.dir for m in members if m.ships_pytest_plugin} >= {"testing"}


# ------------------------------------------------------------------------------------------
# image_registries.py
# ------------------------------------------------------------------------------------------
def test_registries_without_docker_hub_secrets_push_to_ghcr_only() -> None:
    out = registries.decide({"GHCR_OWNER": "Acme-Org", "DOCKERHUB_TOKEN_SET": "false"})
    assert out == {
        "ghcr": "ghcr.io/acme-org/boards-backend",
        "dockerhub": "false",
        "dockerhub_image": "",
        "images": "ghcr.io/acme-org/boards-backend",
    }


def test_registries_need_both_username_and_token() -> None:
    env = {"GHCR_OWNER": "acme", "DOCKERHUB_USERNAME": "bob", "DOCKERHUB_TOKEN_SET": "false"}
    assert registries.decide(env)["dockerhub"] == "false"
    env = {"GHCR_OWNER": "acme", "DOCKERHUB_USERNAME": "", "DOCKERHUB_TOKEN_SET": "true"}
    assert registries.decide(env)["dockerhub"] == "false"


def test_registries_with_docker_hub() -> None:
    env = {
        "GHCR_OWNER": "acme",
        "DOCKERHUB_USERNAME": "bob",
        "DOCKERHUB_TOKEN_SET": "true",
        "DOCKERHUB_NAMESPACE": "",
    }
    out = registries.decide(env)
    assert out["dockerhub"] == "true"
    assert out["images"] == "ghcr.io/acme/boards-backend\ndocker.io/bob/boards-backend"
    env["DOCKERHUB_NAMESPACE"] = "BoardsOrg"
    assert registries.decide(env)["dockerhub_image"] == "docker.io/boardsorg/boards-backend"


@pytest.mark.parametrize(
    "env",
    [
        {"GHCR_OWNER": ""},
        {"GHCR_OWNER": "a b"},
        {"GHCR_OWNER": "acme", "IMAGE_NAME": "Bad/Name"},
        {
            "GHCR_OWNER": "acme",
            "DOCKERHUB_USERNAME": "bob",
            "DOCKERHUB_TOKEN_SET": "true",
            "DOCKERHUB_NAMESPACE": "x$(id)",
        },
    ],
)
def test_registries_reject_bad_names(env: dict[str, str]) -> None:
    with pytest.raises(registries.ConfigError):
        registries.decide(env)


def test_registries_write_multiline_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    registries.write_outputs({"a": "1", "images": "x\ny"}, str(out))
    assert out.read_text() == "a=1\nimages<<__EOF__\nx\ny\n__EOF__\n"


# ------------------------------------------------------------------------------------------
# require_success.py
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("needs", "ok"),
    [
        ({"discover": {"result": "success"}, "package": {"result": "success"}}, True),
        ({"discover": {"result": "success"}, "package": {"result": "skipped"}}, True),
        ({"discover": {"result": "success"}, "package": {"result": "failure"}}, False),
        ({"discover": {"result": "failure"}, "package": {"result": "skipped"}}, False),
        ({"discover": {"result": "success"}, "package": {"result": "cancelled"}}, False),
        ({}, False),
        ([], False),
    ],
)
def test_gate(needs: object, ok: bool) -> None:
    assert (gate.failures(needs) == []) is ok


def test_gate_main_exit_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEEDS", json.dumps({"a": {"result": "failure"}}))
    assert gate.main() == 1
    monkeypatch.setenv("NEEDS", json.dumps({"a": {"result": "success"}}))
    assert gate.main() == 0
    monkeypatch.setenv("NEEDS", "not json")
    assert gate.main() == 2


# ------------------------------------------------------------------------------------------
# release_version.py
# ------------------------------------------------------------------------------------------
release = script("release_version")


@pytest.mark.parametrize(
    ("ref", "version", "out"),
    [
        ("refs/heads/main", "0.1.0", {"release": "false", "prerelease": "false"}),
        ("refs/pull/7/merge", "0.2.0rc1", {"release": "false", "prerelease": "true"}),
        ("refs/tags/v0.1.0", "0.1.0", {"release": "true", "prerelease": "false"}),
        ("refs/tags/v1.5.0-rc.1", "1.5.0rc1", {"release": "true", "prerelease": "true"}),
        ("refs/tags/v2.0", "2.0.0", {"release": "true", "prerelease": "false"}),
    ],
)
def test_release_version_accepts(ref: str, version: str, out: dict[str, str]) -> None:
    assert release.decide(ref, version) == {"version": version, **out}


@pytest.mark.parametrize(
    ("ref", "version"),
    [
        ("refs/tags/v0.1.1", "0.1.0"),
        ("refs/tags/v1.5.0", "1.5.0rc1"),
        ("refs/tags/v1.5.0-rc.2", "1.5.0rc1"),
        ("refs/tags/vnext", "0.1.0"),
    ],
)
def test_release_version_rejects_a_tag_that_is_not_the_version(ref: str, version: str) -> None:
    with pytest.raises(release.VersionError):
        release.decide(ref, version)


def test_release_version_main_reads_the_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "boards-backend"\nversion = "1.4.2"\n')
    monkeypatch.setenv("PYPROJECT", str(pyproject))
    assert run_on_tag(release.main, "v1.4.2", tmp_path, monkeypatch) == (
        0,
        "version=1.4.2\nrelease=true\nprerelease=false\n",
    )
    assert run_on_tag(release.main, "v1.4.3", tmp_path, monkeypatch) == (1, "")
    assert "does not match boards-backend's version 1.4.2" in capsys.readouterr().err
    pyproject.write_text('[project]\nname = "boards-backend"\n')
    assert run_on_tag(release.main, "v1.4.2", tmp_path, monkeypatch) == (1, "")


def test_release_version_of_this_workspace() -> None:
    version = release.package_version(ROOT / release.DEFAULT_PYPROJECT)
    assert release.decide(f"refs/tags/v{version}", version)["release"] == "true"


# ------------------------------------------------------------------------------------------
# promote_image.py
# ------------------------------------------------------------------------------------------
promote = script("promote_image")
GHCR = "ghcr.io/acme/boards-backend"
HUB = "docker.io/acme/boards-backend"
# What the build jobs output (per-platform indexes: image + attestation manifest) ...
AMD, ARM = "sha256:" + "1" * 64, "sha256:" + "2" * 64
# ... the image manifests inside them, and BuildKit's attestation manifests.
AMD_IMAGE, ARM_IMAGE = "sha256:" + "4" * 64, "sha256:" + "5" * 64
AMD_ATT, ARM_ATT = "sha256:" + "6" * 64, "sha256:" + "7" * 64
INDEX = "sha256:" + "3" * 64
DIGEST = "sha256:" + "ab" * 32


def promote_env(**extra: str) -> dict[str, str]:
    return {
        "SOURCE_IMAGE": GHCR,
        "IMAGES": f"{GHCR}\n{HUB}",
        "TAGS": f"{GHCR}:1.4.2\n{GHCR}:1.4\n{HUB}:1.4.2\n{HUB}:1.4\n",
        "ANNOTATIONS": "index:org.opencontainers.image.title=boards-backend\n",
        **extra,
    }


def descriptor(digest: str, arch: str, os: str = "linux") -> dict[str, object]:
    return {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest,
        "platform": {"architecture": arch, "os": os},
    }


def oci_index(*manifests: dict[str, object]) -> str:
    return json.dumps(
        {"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": list(manifests)}
    )


class Registry:
    """Answers imagetools as GHCR would after a build with provenance (mode=max)."""

    def __init__(self, published: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.published = published or oci_index(
            descriptor(AMD_IMAGE, "amd64"),
            descriptor(AMD_ATT, "unknown", "unknown"),
            descriptor(ARM_IMAGE, "arm64"),
            descriptor(ARM_ATT, "unknown", "unknown"),
        )

    def __call__(self, command: list[str]) -> str:
        self.calls.append(list(command))
        ref = command[4] if len(command) > 4 else ""
        if command[3] == "create":
            return ""
        if "--format" in command:
            return json.dumps(
                {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": INDEX}
            )
        if ref.endswith(f"@{AMD}"):
            return oci_index(
                descriptor(AMD_IMAGE, "amd64"), descriptor(AMD_ATT, "unknown", "unknown")
            )
        if ref.endswith(f"@{ARM}"):
            return oci_index(
                descriptor(ARM_IMAGE, "arm64"), descriptor(ARM_ATT, "unknown", "unknown")
            )
        if ref.endswith(f"@{INDEX}"):
            return self.published
        raise AssertionError(f"unexpected {command}")


def test_promote_tags_the_build_outputs_and_names_the_manifests_the_index_lists() -> None:
    digests = promote.read_digests(
        {"DIGEST_LINUX_AMD64": AMD, "DIGEST_LINUX_ARM64": ARM}, ["linux/amd64", "linux/arm64"]
    )
    plan = promote.plan(promote_env(), digests)
    registry = Registry()
    out = promote.promote(plan, registry)
    # The SBOM subjects are the image manifests, which the published index lists; the build
    # outputs (per-platform indexes) are not in it.
    assert out == {
        "ghcr_digest": INDEX,
        "dockerhub_digest": INDEX,
        "linux_amd64": AMD_IMAGE,
        "linux_arm64": ARM_IMAGE,
    }
    creates = [c for c in registry.calls if c[3] == "create"]
    ghcr_create, hub_create = creates
    assert ghcr_create == [
        "docker", "buildx", "imagetools", "create",
        "--annotation", "index:org.opencontainers.image.title=boards-backend",
        "--tag", f"{GHCR}:1.4.2", "--tag", f"{GHCR}:1.4",
        f"{GHCR}@{AMD}", f"{GHCR}@{ARM}",
    ]  # fmt: skip
    assert hub_create[-4:] == ["--tag", f"{HUB}:1.4", f"{GHCR}@{AMD}", f"{GHCR}@{ARM}"]
    assert [
        "docker",
        "buildx",
        "imagetools",
        "inspect",
        f"{HUB}@{INDEX}",
        "--raw",
    ] in registry.calls
    notes = promote.notes(plan, out, "acme/boards")
    assert f"| `{HUB}:1.4.2` | `{INDEX}` |" in notes
    assert f"| linux/arm64 | `{ARM_IMAGE}` | `{ARM}` |" in notes
    assert f"gh attestation verify oci://{GHCR}@{INDEX} --repo acme/boards" in notes
    assert (
        f"gh attestation verify oci://{GHCR}@{AMD_IMAGE} --repo acme/boards "
        "--predicate-type https://spdx.dev/Document/v2.3"
    ) in notes


def test_promote_accepts_a_build_output_that_is_the_image_manifest() -> None:
    plan = promote.plan(promote_env(IMAGES=GHCR, TAGS=f"{GHCR}:edge"), {"linux/amd64": AMD_IMAGE})
    registry = Registry(published=oci_index(descriptor(AMD_IMAGE, "amd64")))

    def run(command: list[str]) -> str:
        if command[4].endswith(f"@{AMD_IMAGE}"):  # a manifest: no "manifests" list
            return json.dumps({"mediaType": "application/vnd.oci.image.manifest.v1+json"})
        return registry(command)

    assert promote.promote(plan, run)["linux_amd64"] == AMD_IMAGE


@pytest.mark.parametrize(
    ("published", "message"),
    [
        (oci_index(descriptor(AMD_IMAGE, "amd64")), "not the tested"),  # arm64 missing
        (
            oci_index(
                descriptor(AMD_IMAGE, "amd64"),
                descriptor(ARM_IMAGE, "arm64"),
                descriptor(DIGEST, "s390x"),
            ),
            "not the tested",
        ),
        (oci_index(descriptor(AMD_IMAGE, "amd64"), descriptor(DIGEST, "arm64")), "not the tested"),
        (
            oci_index(descriptor(AMD_IMAGE, "amd64"), descriptor(AMD_IMAGE, "amd64")),
            "lists linux/amd64 twice",
        ),
    ],
)
def test_promote_fails_when_the_index_lists_other_images(published: str, message: str) -> None:
    plan = promote.plan(
        promote_env(IMAGES=GHCR, TAGS=f"{GHCR}:edge"), {"linux/amd64": AMD, "linux/arm64": ARM}
    )
    with pytest.raises(promote.PromoteError, match=re.escape(message)):
        promote.promote(plan, Registry(published=published))


def test_promote_refuses_a_tested_digest_of_another_platform() -> None:
    plan = promote.plan(promote_env(IMAGES=GHCR, TAGS=f"{GHCR}:edge"), {"linux/amd64": ARM})
    with pytest.raises(promote.PromoteError, match=re.escape("not one linux/amd64 image")):
        promote.promote(plan, Registry())


def test_promote_refuses_a_platform_without_a_build_output() -> None:
    with pytest.raises(promote.PromoteError, match="no tested digest for linux/arm64"):
        promote.read_digests({"DIGEST_LINUX_AMD64": AMD}, ["linux/amd64", "linux/arm64"])
    with pytest.raises(promote.PromoteError, match="not a sha256 digest"):
        promote.read_digests(
            {"DIGEST_LINUX_AMD64": AMD, "DIGEST_LINUX_ARM64": "latest"},
            ["linux/amd64", "linux/arm64"],
        )
    with pytest.raises(promote.PromoteError, match="unknown platform"):
        promote.read_digests({}, ["linux/s390x"])


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (promote_env(SOURCE_IMAGE=HUB), "not a GHCR image"),
        (promote_env(IMAGES=HUB), "does not include SOURCE_IMAGE"),
        (promote_env(IMAGES=f"{GHCR}\nquay.io/acme/x"), "not a GHCR or Docker Hub image"),
        (promote_env(TAGS=f"{GHCR}:1.4.2\nghcr.io/other/boards-backend:1"), "is not a tag of"),
        (promote_env(TAGS=f"{GHCR}:1.4.2\n{GHCR}:bad tag"), "is not a tag of"),
        (promote_env(TAGS=f"{GHCR}:1.4.2"), f"no tag for {HUB}"),
        (promote_env(ANNOTATIONS="manifest:x=y"), "not an index annotation"),
    ],
)
def test_promote_rejects_bad_plans(env: dict[str, str], message: str) -> None:
    with pytest.raises(promote.PromoteError, match=re.escape(message)):
        promote.plan(env, {"linux/amd64": AMD})


def test_promote_fails_when_the_index_digest_cannot_be_read() -> None:
    plan = promote.plan(promote_env(IMAGES=GHCR, TAGS=f"{GHCR}:edge"), {"linux/amd64": AMD})
    registry = Registry()

    def run(command: list[str]) -> str:
        return "{}" if "--format" in command else registry(command)

    with pytest.raises(promote.PromoteError, match="gave no digest"):
        promote.promote(plan, run)


# ------------------------------------------------------------------------------------------
# release_series.py
# ------------------------------------------------------------------------------------------
series = script("release_series")
TAGS = ["v0.9.0", "v1.4.2", "v1.4.3", "v1.5.0", "v2.0.0", "v2.1.0-rc.1", "v1.5.1rc1"]


@pytest.mark.parametrize(
    ("ref", "tags", "latest", "major", "minor"),
    [
        ("refs/tags/v2.0.0", TAGS, "true", "true", "true"),  # the highest: a pre-release above
        ("refs/tags/v1.4.3", TAGS, "false", "false", "true"),  # backport: 1.5.0 and 2.0.0 exist
        ("refs/tags/v1.5.0", TAGS, "false", "true", "true"),  # highest of 1.x, not of all
        ("refs/tags/v1.4.2", TAGS, "false", "false", "false"),  # 1.4.3 exists
        ("refs/tags/v0.9.0", ["v0.9.0"], "true", "false", "true"),  # no bare 0
        ("refs/tags/v2.1.0-rc.1", TAGS, "false", "false", "false"),  # pre-release: nothing moves
        ("refs/tags/v2.1", [*TAGS, "v2.1"], "true", "true", "true"),  # v2.1 == v2.1.0
        ("refs/tags/v1.10.0", [*TAGS, "v1.10.0"], "false", "true", "true"),  # 10 > 5, not "1" < "5"
        ("refs/heads/main", [], "false", "false", "false"),
    ],
)
def test_release_series(ref: str, tags: list[str], latest: str, major: str, minor: str) -> None:
    assert series.decide(ref, tags) == {"latest": latest, "major": major, "minor": minor}


def test_release_series_needs_the_released_tag_among_the_tags() -> None:
    with pytest.raises(series.SeriesError, match="were the tags fetched"):
        series.decide("refs/tags/v3.0.0", TAGS)


def test_release_series_main_reads_git_tags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(
        repo,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "x",
    )
    for tag in ("v1.4.3", "v2.0.0"):
        git(repo, "tag", tag)
    monkeypatch.chdir(repo)
    monkeypatch.delenv("TAGS", raising=False)
    assert run_on_tag(series.main, "v1.4.3", tmp_path, monkeypatch) == (
        0,
        "latest=false\nmajor=true\nminor=true\n",
    )
    assert run_on_tag(series.main, "v9.9.9", tmp_path, monkeypatch) == (1, "")
    assert "release-series: error: the tag list does not include v9.9.9" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------
# github_release.py
# ------------------------------------------------------------------------------------------
github_release = script("github_release")


def test_release_command(tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("## Container image\n")
    argv = github_release.command("v1.4.2", "acme/boards", notes)
    assert argv[:4] == ["gh", "release", "create", "v1.4.2"]
    assert "--verify-tag" in argv and "--prerelease" not in argv
    assert argv[argv.index("--notes-file") + 1] == str(notes)
    assert argv[-1] == "--latest=false"  # a backport, unless release_series.py says highest
    assert (
        github_release.command("v1.4.2", "acme/boards", notes, latest=True)[-1] == "--latest=true"
    )
    pre = github_release.command("v1.5.0-rc.1", "acme/boards", notes, latest=True)
    assert pre[-2:] == ["--prerelease", "--latest=false"]


@pytest.mark.parametrize(
    ("tag", "repository", "notes_text"),
    [
        ("main", "acme/boards", "x"),
        ("v1.0; rm -rf /", "acme/boards", "x"),
        ("v1.0.0", "acme", "x"),
        ("v1.0.0", "acme/boards", ""),
    ],
)
def test_release_command_rejects(
    tmp_path: Path, tag: str, repository: str, notes_text: str
) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text(notes_text)
    with pytest.raises(github_release.ReleaseError):
        github_release.command(tag, repository, notes)
