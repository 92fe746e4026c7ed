"""Build behaviour: the cache, the lock check, and secrets that never land in the image."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from tests.image.support import ROOT, build_image, workspace_copy

STEP = re.compile(r"^#(\d+) \[(?!internal)([^\]]+)\] (.*)$")


def dockerfile_steps(build_output: str) -> dict[str, bool]:
    """Map each Dockerfile step that does work (not FROM) to whether BuildKit reused it."""
    titles: dict[str, str] = {}
    cached: set[str] = set()
    for line in build_output.splitlines():
        if match := STEP.match(line):
            number, _, instruction = match.groups()
            if not instruction.startswith("FROM "):
                titles.setdefault(number, instruction)
        elif (match := re.match(r"^#(\d+) CACHED$", line)) is not None:
            cached.add(match.group(1))
    return {title: number in cached for number, title in titles.items()}


def step(steps: dict[str, bool], fragment: str) -> bool:
    [cached] = [hit for title, hit in steps.items() if fragment in title]
    return cached


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return workspace_copy(tmp_path / "workspace")


@pytest.fixture
def scratch_tag() -> Iterator[Callable[[str], str]]:
    """Unique tags for throw-away builds (other sessions build on the same engine), removed
    afterwards."""
    tags: list[str] = []

    def make(purpose: str) -> str:
        tags.append(f"boards-backend:{purpose}-{uuid.uuid4().hex[:8]}")
        return tags[-1]

    yield make
    if tags:
        subprocess.run(["docker", "image", "rm", "-f", *tags], capture_output=True, check=False)


def test_rebuild_without_change_reuses_every_step(
    backend_image: str, image_build_env: dict[str, str]
) -> None:
    result = build_image(backend_image, env=image_build_env)
    assert result.returncode == 0, result.stderr[-3000:]
    steps = dockerfile_steps(result.stderr)
    assert steps, result.stderr[-3000:]
    assert all(steps.values()), {title: hit for title, hit in steps.items() if not hit}


def test_code_change_keeps_the_dependency_layer(
    backend_image: str,
    image_build_env: dict[str, str],
    workspace: Path,
    scratch_tag: Callable[[str], str],
) -> None:
    module = workspace / "packages/backend/src/boards/__init__.py"
    module.write_text(module.read_text() + f"\n# cache test {uuid.uuid4()}\n")
    result = build_image(scratch_tag("cache-test"), env=image_build_env, context=workspace)
    assert result.returncode == 0, result.stderr[-3000:]
    steps = dockerfile_steps(result.stderr)
    assert step(steps, "uv sync --frozen") is True  # dependencies reused
    assert step(steps, "--locked") is False  # the application rebuilt


def test_stale_lock_fails_the_build_with_uvs_message(
    image_build_env: dict[str, str], workspace: Path, scratch_tag: Callable[[str], str]
) -> None:
    # Any member's pyproject.toml counts, even one whose code never reaches the image.
    client = workspace / "packages/client/pyproject.toml"
    client.write_text(
        client.read_text().replace("dependencies = [", 'dependencies = ["six>=1", ', 1)
    )
    result = build_image(scratch_tag("stale-lock-test"), env=image_build_env, context=workspace)
    assert result.returncode != 0
    assert "needs to be updated" in result.stderr, result.stderr[-3000:]


@dataclass
class LayerScan:
    """What :func:`scan_saved_image` read of a ``docker save`` archive, and what it found."""

    configs: list[str] = field(default_factory=list)  # the image configs manifest.json names
    listed: list[str] = field(default_factory=list)  # the layers manifest.json names, in order
    scanned: list[str] = field(default_factory=list)  # the layers read to their end
    findings: list[str] = field(default_factory=list)  # "<where>: <what>"


def scan_saved_image(archive: Path, marker: bytes) -> LayerScan:
    """Look for ``marker`` (and any ``run/secrets/`` entry) in every layer and image config of a
    ``docker save`` archive. The layers are found through manifest.json, so both layouts are read:
    ``<id>/layer.tar`` (Docker < 25) and OCI's ``blobs/sha256/<digest>`` (Docker 25+), with
    layers plain or compressed."""
    scan = LayerScan()
    with tarfile.open(archive) as outer:

        def member(name: str) -> IO[bytes]:
            data = outer.extractfile(name)  # follows the symlinks `docker save` makes
            assert data is not None, f"{name} is not a file in the archive"
            return data

        manifest = json.load(member("manifest.json"))
        for image in manifest:
            scan.configs.append(image["Config"])
            if marker in member(image["Config"]).read():
                scan.findings.append(f"{image['Config']}: the marker, in the image config")
        scan.listed = list(dict.fromkeys(name for image in manifest for name in image["Layers"]))
        for name in scan.listed:
            with tarfile.open(fileobj=member(name), mode="r:*") as layer:
                for entry in layer:
                    path = entry.name.removeprefix("./")
                    if path.startswith("run/secrets/"):
                        scan.findings.append(f"{name}: {path}: a BuildKit secret's mount point")
                    data = layer.extractfile(entry) if entry.isfile() else None
                    if data is not None and marker in data.read():
                        scan.findings.append(f"{name}: {path}: the marker")
            scan.scanned.append(name)
    return scan


def test_ca_bundle_and_index_url_never_land_in_the_image(
    tmp_path: Path, image_build_env: dict[str, str], scratch_tag: Callable[[str], str]
) -> None:
    marker = f"boards-secret-marker-{uuid.uuid4()}"
    system_bundle = Path(os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"))
    bundle = tmp_path / "ca.pem"
    bundle.write_text(system_bundle.read_text() + f"\n# {marker}\n")
    tag = scratch_tag("secret-test")
    result = build_image(
        tag,
        "--no-cache",
        "--build-arg",
        "UV_DEFAULT_INDEX=https://pypi.org/simple",
        env={**image_build_env, "BOARDS_BUILD_CA_BUNDLE": str(bundle)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metadata = (
        subprocess.run(
            ["docker", "image", "inspect", tag], capture_output=True, text=True, check=True
        ).stdout
        + subprocess.run(
            ["docker", "history", "--no-trunc", tag], capture_output=True, text=True, check=True
        ).stdout
    )
    for needle in (marker, "ssl_ca", "UV_DEFAULT_INDEX", "netrc"):
        assert needle not in metadata, needle
    archive = tmp_path / "image.tar"
    subprocess.run(["docker", "save", "-o", str(archive), tag], check=True)
    scan = scan_saved_image(archive, marker.encode())
    assert scan.listed, "manifest.json lists no layers"
    assert scan.scanned == scan.listed, "some layers were not scanned"
    assert scan.findings == []


# -- the scanner itself, on archives in both layouts built here ---------------------------------

SYNTHETIC_MARKER = b"boards-secret-marker-synthetic"


def tar_bytes(files: dict[str, bytes], compression: str = "") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=f"w:{compression}") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def saved_image(dest: Path, layout: str, layers: list[bytes], config: bytes = b"{}") -> Path:
    """A `docker save` archive holding ``layers``: ``legacy`` (<id>/layer.tar, Docker < 25) or
    ``oci`` (blobs/sha256/<digest> with index.json, Docker 25+)."""
    entries: dict[str, bytes] = {}

    def blob(content: bytes) -> str:
        digest = hashlib.sha256(content).hexdigest()
        name = f"{digest}/layer.tar" if layout == "legacy" else f"blobs/sha256/{digest}"
        entries[name] = content
        return name

    layer_names = [blob(layer) for layer in layers]
    config_name = f"blobs/sha256/{hashlib.sha256(config).hexdigest()}"
    if layout == "legacy":
        config_name = f"{hashlib.sha256(config).hexdigest()}.json"
    else:
        entries["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
        entries["index.json"] = b'{"schemaVersion": 2, "manifests": []}'
    entries[config_name] = config
    manifest = [{"Config": config_name, "RepoTags": ["t:t"], "Layers": layer_names}]
    entries["manifest.json"] = json.dumps(manifest).encode()
    dest.write_bytes(tar_bytes(entries))
    return dest


LAYOUTS = pytest.mark.parametrize("layout", ["legacy", "oci"])


@LAYOUTS
def test_scan_reads_every_layer_manifest_json_lists(tmp_path: Path, layout: str) -> None:
    layers = [
        tar_bytes({"etc/os-release": b"ID=debian\n"}),
        tar_bytes({"app/.venv/bin/boards": b"#!/bin/sh\n"}, compression="gz"),
    ]
    scan = scan_saved_image(saved_image(tmp_path / "image.tar", layout, layers), SYNTHETIC_MARKER)
    assert len(scan.listed) == 2
    assert scan.scanned == scan.listed
    assert scan.findings == []


@LAYOUTS
def test_scan_finds_a_leaked_secret_in_any_layer(tmp_path: Path, layout: str) -> None:
    layers = [
        tar_bytes({"etc/os-release": b"ID=debian\n"}),
        tar_bytes({"app/ca.pem": b"-----BEGIN CERTIFICATE-----\n" + SYNTHETIC_MARKER}, "gz"),
        tar_bytes({"run/secrets/netrc": b"machine example"}),
    ]
    archive = saved_image(tmp_path / "image.tar", layout, layers, config=SYNTHETIC_MARKER)
    scan = scan_saved_image(archive, SYNTHETIC_MARKER)
    [config] = scan.configs
    _, ca_layer, secrets_layer = scan.listed
    assert scan.findings == [
        f"{config}: the marker, in the image config",
        f"{ca_layer}: app/ca.pem: the marker",
        f"{secrets_layer}: run/secrets/netrc: a BuildKit secret's mount point",
    ]


def test_image_reports_its_revision(backend_image: str) -> None:
    labels = json.loads(
        subprocess.run(
            ["docker", "image", "inspect", "-f", "{{json .Config.Labels}}", backend_image],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert labels["org.opencontainers.image.revision"] == head
