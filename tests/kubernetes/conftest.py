"""Fixtures for the Kubernetes checks: the rendered overlays, and the images to run them with."""

from __future__ import annotations

import pytest

from tests.kubernetes.manifests import OVERLAYS, Obj, all_containers, pod_specs, render


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


def image_map(objects: list[Obj], local: dict[str, str]) -> dict[str, str]:
    """{rendered image reference: local image} for every container in `objects`."""
    mapping = {}
    for _, spec in pod_specs(objects):
        for container in all_containers(spec):
            image = container["image"]
            repository = image.rsplit("/", 1)[-1].split("@")[0].split(":")[0]
            if repository not in local:
                pytest.fail(f"no local image stands for {image!r}")
            mapping[image] = local[repository]
    return mapping
