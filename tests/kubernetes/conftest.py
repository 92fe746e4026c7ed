"""Fixtures for the Kubernetes checks: the rendered overlays, and the images to run them with."""

from __future__ import annotations

import pytest

from tests.kubernetes.manifests import OVERLAYS, Obj, render


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Obj]]:
    """Every overlay, rendered once by `kubectl kustomize`."""
    return {overlay: render(overlay) for overlay in OVERLAYS}


@pytest.fixture(scope="session")
def local_images(
    backend_image: str,  # tests/conftest.py: built once per session for every suite
    postgres_image: str,
    redis_image: str,
) -> dict[str, str]:
    """What each image name of the rendered repository runs as here: the image under test, and
    the session's PostgreSQL and Redis (official, or the stand-ins)."""
    return {"boards-backend": backend_image, "postgres": postgres_image, "redis": redis_image}
