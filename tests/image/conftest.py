"""Fixtures for the image tests: the image (built once a session with the `just image` script,
or one already built) and fresh PostgreSQL and Redis containers on a network the test creates."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
from boards_testing.plugin import publish_on_loopback
from testcontainers.community.postgres import PostgresContainer
from testcontainers.community.redis import RedisContainer
from testcontainers.core.network import Network

from tests.image.support import build_image


@pytest.fixture(scope="session")
def image_build_env(python_image: str, uv_image: str) -> dict[str, str]:
    """The base and uv images this session resolved, for tools/image/build.sh (stand-ins are
    reported in the session summary)."""
    return {"BOARDS_PYTHON_IMAGE": python_image, "BOARDS_UV_IMAGE": uv_image}


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


@pytest.fixture
def pg(postgres_image: str, docker_network: Network) -> Iterator[PostgresContainer]:
    """A fresh PostgreSQL, `db` on the test network (NETWORK_DB_URL), 127.0.0.1 for the test."""
    container = PostgresContainer(
        postgres_image, username="boards", password="boards", dbname="boards", driver="psycopg"
    )
    publish_on_loopback(container, 5432).with_network(docker_network).with_network_aliases("db")
    with container:
        yield container


@pytest.fixture
def redis(redis_image: str, docker_network: Network) -> Iterator[RedisContainer]:
    """A fresh Redis, `redis` on the test network (NETWORK_REDIS_URL)."""
    container = RedisContainer(redis_image)
    publish_on_loopback(container, 6379).with_network(docker_network).with_network_aliases("redis")
    with container:
        yield container
