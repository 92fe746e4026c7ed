"""Fixtures shared by the workspace-level suites that run the backend image (tests/image,
tests/chaos, tests/kubernetes): the image is built once per session, whichever suite asks first."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.image.support import build_image

#: The slow suites: each folder's tests carry the marker of its name (registered in pyproject.toml).
SLOW_SUITES = ("image", "chaos", "kubernetes", "ci")
_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(_HERE):
            suite = item.path.relative_to(_HERE).parts[0]
            if suite in SLOW_SUITES:
                item.add_marker(getattr(pytest.mark, suite))


@pytest.fixture(scope="session")
def image_build_env() -> dict[str, str]:
    """What tools/image/build.sh adds to the environment for the image tests: nothing; it passes
    BOARDS_PYTHON_IMAGE and BOARDS_UV_IMAGE on when they are set, else the Dockerfile's
    defaults stand (where they cannot be pulled, its error says how to get stand-ins)."""
    return {}


@pytest.fixture(scope="session")
def backend_image(request: pytest.FixtureRequest) -> str:
    """The image under test, BOARDS_TEST_IMAGE (default boards-backend:test): built (or reused
    from the build cache) once per session, or, with BOARDS_TEST_IMAGE_PREBUILT=1 (`just
    image-verify`), used as it is: a local tag, or a pushed name@sha256:digest, pulled if it is
    not here yet. CI tests the digest it pushed this way, so what is tested is what is tagged."""
    image = os.environ.get("BOARDS_TEST_IMAGE", "boards-backend:test")
    if os.environ.get("BOARDS_TEST_IMAGE_PREBUILT", "") in ("1", "true", "yes"):
        present = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Id}}", image],
            capture_output=True,
            text=True,
            check=False,
        )
        if present.returncode != 0:
            pulled = subprocess.run(
                ["docker", "pull", image], capture_output=True, text=True, timeout=900
            )
            assert pulled.returncode == 0, f"cannot pull {image}: {pulled.stderr[-2000:]}"
        return image
    result = build_image(image, env=request.getfixturevalue("image_build_env"))
    assert result.returncode == 0, result.stderr[-4000:]
    return image
