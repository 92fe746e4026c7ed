"""Fixtures for the Kubernetes checks: the rendered overlays, and the images to run them with."""

from __future__ import annotations

import pytest

# The image suite's build, reused: the same tag (BOARDS_TEST_IMAGE, default
# boards-backend:test) and builder, so a session that runs both suites builds the image once and
# finds it in the build cache the second time.
from tests.image.conftest import backend_image, image_build_env  # noqa: F401
from tests.kubernetes.manifests import OVERLAYS, Obj, all_containers, pod_specs, render


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Obj]]:
    """Every overlay, rendered once by `kubectl kustomize`."""
    return {overlay: render(overlay) for overlay in OVERLAYS}


@pytest.fixture(scope="session")
def local_images(
    backend_image: str,  # noqa: F811 (the fixture imported above)
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
