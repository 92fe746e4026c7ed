"""Fixtures for the image tests: the image (built once a session with the `just image` script).
PostgreSQL and Redis on the test's network come from the boards_testing plugin
(`network_postgres`, `network_redis` and their `*_url` fixtures)."""

from __future__ import annotations

import os

import pytest

from tests.image.support import build_image


@pytest.fixture(scope="session")
def image_build_env(python_image: str, uv_image: str) -> dict[str, str]:
    """The base and uv images this session resolved, for tools/image/build.sh (stand-ins are
    reported in the session summary)."""
    return {"BOARDS_PYTHON_IMAGE": python_image, "BOARDS_UV_IMAGE": uv_image}


@pytest.fixture(scope="session")
def backend_image(image_build_env: dict[str, str]) -> str:
    """The image under test: built (or reused from the build cache) once per session."""
    tag = os.environ.get("BOARDS_TEST_IMAGE", "boards-backend:test")
    result = build_image(tag, env=image_build_env)
    assert result.returncode == 0, result.stderr[-4000:]
    return tag
