"""Fixtures for the image tests: the image (built once a session with the `just image` script)
and fresh PostgreSQL and Redis containers on a network the test creates."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from testcontainers.core.network import Network
from testcontainers.postgres import PostgresContainer
from testcontainers.redis import RedisContainer

from tests.image.support import build_image


@pytest.fixture(scope="session")
def backend_image() -> str:
    """The image under test: built (or reused from the build cache) once per session."""
    tag = os.environ.get("BOARDS_TEST_IMAGE", "boards-backend:test")
    result = build_image(tag)
    assert result.returncode == 0, result.stderr[-4000:]
    return tag


@pytest.fixture
def network() -> Iterator[Network]:
    with Network() as net:
        yield net


@pytest.fixture
def pg(postgres_image: str, network: Network) -> Iterator[PostgresContainer]:
    """A fresh PostgreSQL, `db` on the test network (NETWORK_DB_URL), 127.0.0.1 for the test."""
    container = PostgresContainer(
        postgres_image, username="boards", password="boards", dbname="boards", driver="psycopg"
    )
    container.ports["5432/tcp"] = ("127.0.0.1", None)
    container.with_network(network).with_network_aliases("db")
    with container:
        yield container


@pytest.fixture
def redis(redis_image: str, network: Network) -> Iterator[RedisContainer]:
    """A fresh Redis, `redis` on the test network (NETWORK_REDIS_URL)."""
    container = RedisContainer(redis_image)
    container.ports["6379/tcp"] = ("127.0.0.1", None)
    container.with_network(network).with_network_aliases("redis")
    with container:
        yield container
