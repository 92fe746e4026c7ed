"""The scoped build context: packages/backend/.dockerignore (which Dockerfile.dockerignore links
to) keeps everything but what the image needs away from the builder, so large files anywhere
else in the workspace cost nothing."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.image.support import build_image, workspace_copy

LARGE = 30 * 1024 * 1024
# BuildKit's plain progress, e.g. "#7 transferring context: 31.46MB 2.1s done" (go-units sizes).
TRANSFERRED = re.compile(r"^#\d+ transferring context: ([\d.]+)([kMG]?B)\b", re.MULTILINE)
UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}
BOUND = 2_000_000  # the whole scoped context (uv.lock is the largest file) is far below this


def context_bytes(build_output: str) -> float:
    """The largest context transfer BuildKit reported (it reports progress, then the total)."""
    sizes = [float(n) * UNITS[unit] for n, unit in TRANSFERRED.findall(build_output)]
    assert sizes, "BuildKit reported no context transfer:\n" + build_output[-3000:]
    return max(sizes)


def test_context_size_is_parsed() -> None:
    output = "#2 transferring context: 2B done\n#7 transferring context: 12.5MB 1.0s\n"
    assert context_bytes(output + "#7 transferring context: 31.46MB 2.1s done\n") == 31.46e6


@pytest.fixture
def tag() -> Iterator[str]:
    name = f"boards-backend:context-test-{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(["docker", "image", "rm", "-f", name], capture_output=True, check=False)


def test_large_files_outside_the_scope_never_reach_the_builder(
    backend_image: str,  # built first, so this build of the same sources comes from the cache
    image_build_env: dict[str, str],
    tmp_path: Path,
    tag: str,
) -> None:
    workspace = workspace_copy(tmp_path / "workspace")
    assert (workspace / "packages/backend/Dockerfile.dockerignore").is_symlink()
    # Real bytes (not sparse, not compressible): at the root, in a non-shipped folder of the
    # backend, and in another member.
    for place in ("big.bin", "packages/backend/tests/big.bin", "packages/client/big.bin"):
        (workspace / place).write_bytes(os.urandom(LARGE))
    result = build_image(tag, env=image_build_env, context=workspace)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"naming to docker.io/library/{tag}" in result.stderr, result.stderr[-3000:]
    assert context_bytes(result.stderr) < BOUND
