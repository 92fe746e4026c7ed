"""The properties the rest of the workspace relies on, for whichever image is in use (the official
one or its stand-in): configuration, versions, users, and real connections via the fixtures."""

from __future__ import annotations

import io
import tarfile
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from boards_testing.plugin import (
    LOOPBACK,
    NETWORK_POSTGRES_URL,
    NETWORK_REDIS_URL,
    loopback_port,
    postgres_url_of,
    publish_on_loopback,
)

OFFICIAL_PYTHON_SLIM_BYTES = 124_000_000


def _config(docker_client: Any, image: str) -> dict[str, Any]:
    config: dict[str, Any] = docker_client.images.get(image).attrs["Config"]
    return config


def _env(config: dict[str, Any]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in config.get("Env") or [])


def _run(docker_client: Any, image: str, command: list[str], **kwargs: Any) -> str:
    output: bytes = docker_client.containers.run(image, command, remove=True, **kwargs)
    return output.decode()


def _pid1(container: Any) -> tuple[str, str]:
    """(uid, command name) of PID 1 in a started testcontainers container."""
    status = container.exec(["cat", "/proc/1/status"]).output.decode()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return fields["Uid"].split()[0], fields["Name"].strip()


# --- python -----------------------------------------------------------------------------------


def test_python_image_configuration(docker_client: Any, python_image: str) -> None:
    config = _config(docker_client, python_image)
    env = _env(config)
    assert config["Cmd"] == ["python3"]
    assert env["PATH"].startswith("/usr/local/bin:")
    assert env["LANG"] == "C.UTF-8"
    assert env["PYTHON_VERSION"].startswith("3.12.")


def test_python_image_size_is_that_of_the_official_slim(
    docker_client: Any, python_image: str
) -> None:
    size = docker_client.images.get(python_image).attrs["Size"]
    assert 0.9 * OFFICIAL_PYTHON_SLIM_BYTES <= size <= 1.1 * OFFICIAL_PYTHON_SLIM_BYTES, size


def test_python_runtime(docker_client: Any, python_image: str) -> None:
    script = (
        "import sys, ssl, sqlite3, ctypes, lzma, bz2, zlib, uuid, readline, decimal, hashlib;"
        "print(sys.executable, '%d.%d' % sys.version_info[:2], sys.prefix)"
    )
    out = _run(docker_client, python_image, ["/usr/local/bin/python3", "-c", script])
    assert out.split() == ["/usr/local/bin/python3", "3.12", "/usr/local"]
    version = _run(docker_client, python_image, ["python", "--version"]).strip()
    assert version == f"Python {_env(_config(docker_client, python_image))['PYTHON_VERSION']}"


def test_python_image_has_no_test_suite_or_bytecode(docker_client: Any, python_image: str) -> None:
    out = _run(
        docker_client,
        python_image,
        ["sh", "-c", "find /usr/local -name test -o -name '*.pyc' -o -name 'libpython*.a'"],
    )
    assert out.strip() == ""


def _uv_binary(docker_client: Any, uv_image: str, into: Path) -> Path:
    container = docker_client.containers.create(uv_image)
    try:
        stream, _ = container.get_archive("/uv")
        data = b"".join(stream)
    finally:
        container.remove(force=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(into, filter="data")
    binary = into / "uv"
    binary.chmod(0o755)
    return binary


def test_pip_and_uv_work_in_the_python_image(
    docker_client: Any, python_image: str, uv_image: str, tmp_path: Path
) -> None:
    uv = _uv_binary(docker_client, uv_image, tmp_path)
    script = (
        "set -e; pip --version; python3 -m venv /tmp/pv && /tmp/pv/bin/pip --version;"
        " uv venv --quiet /tmp/uv && uv pip list --python /tmp/uv/bin/python;"
        " /tmp/uv/bin/python -c 'import sys; print(sys.prefix)'"
    )
    out = _run(
        docker_client,
        python_image,
        ["sh", "-c", script],
        volumes={str(uv): {"bind": "/usr/local/bin/uv", "mode": "ro"}},
        environment={"UV_PYTHON_DOWNLOADS": "never", "UV_OFFLINE": "1"},
        network_disabled=True,
    )
    assert "pip " in out
    assert "/tmp/pv/lib/python3.12/site-packages/pip" in out
    assert out.strip().endswith("/tmp/uv")


# --- uv ---------------------------------------------------------------------------------------


def test_uv_image(docker_client: Any, uv_image: str) -> None:
    config = _config(docker_client, uv_image)
    assert config["Entrypoint"] == ["/uv"]
    version = uv_image.split("@")[0].rsplit(":", 1)[1]  # the tag is the uv version
    assert _run(docker_client, uv_image, ["--version"]).split()[:2] == ["uv", version]
    out = _run(docker_client, uv_image, ["--version"], entrypoint=["/uvx"])
    assert out.split()[:2] == ["uvx", version]


# --- postgres ---------------------------------------------------------------------------------


def test_postgres_image_configuration(docker_client: Any, postgres_image: str) -> None:
    config = _config(docker_client, postgres_image)
    env = _env(config)
    assert config["Entrypoint"] == ["docker-entrypoint.sh"]
    assert config["Cmd"] == ["postgres"]
    assert config["StopSignal"] == "SIGINT"
    assert "5432/tcp" in config["ExposedPorts"]
    assert "/var/lib/postgresql/data" in config["Volumes"]
    assert env["PGDATA"] == "/var/lib/postgresql/data"
    assert "/usr/lib/postgresql/15/bin" in env["PATH"].split(":")


def test_postgres_fixture_gives_a_real_connection(postgres_url: str) -> None:
    assert postgres_url.startswith(f"postgresql+psycopg://boards:boards@{LOOPBACK}:")
    with psycopg.connect(postgres_url.replace("+psycopg", "", 1)) as conn:
        row = conn.execute(
            "select current_user, current_database(), current_setting('server_version_num')"
        ).fetchone()
        listen = conn.execute("show listen_addresses").fetchone()
    assert row is not None
    assert row[:2] == ("boards", "boards")
    assert row[2].startswith("15")
    assert listen == ("*",)


def test_postgres_runs_as_uid_999_as_pid_1(postgres_container: Any) -> None:
    assert _pid1(postgres_container) == ("999", "postgres")
    out = postgres_container.exec(["id", "postgres"]).output.decode()
    assert out.startswith("uid=999(postgres) gid=999(postgres)")


def test_postgres_environment_and_init_scripts(postgres_image: str, tmp_path: Path) -> None:
    from testcontainers.community.postgres import PostgresContainer

    initdb = tmp_path / "initdb"
    initdb.mkdir(mode=0o755)
    seed = "CREATE TABLE seeded (n int); INSERT INTO seeded VALUES (42);\n"
    (initdb / "10-seed.sql").write_text(seed)
    (initdb / "20-note.sh").write_text('echo "init script saw POSTGRES_DB=$POSTGRES_DB"\n')
    for path in initdb.iterdir():
        path.chmod(0o644)
    initdb.chmod(0o755)
    password = f"pw {uuid.uuid4().hex[:8]}'\"x"
    container = PostgresContainer(
        postgres_image, username="alice", password=password, dbname="shop", driver=None
    )
    container.with_env("POSTGRES_INITDB_ARGS", "--data-checksums")
    container.with_volume_mapping(str(initdb), "/docker-entrypoint-initdb.d", "ro")
    with publish_on_loopback(container, 5432) as pg:
        port = loopback_port(pg, 5432)
        conninfo = psycopg.conninfo.make_conninfo(
            host=LOOPBACK, port=port, user="alice", password=password, dbname="shop"
        )
        with psycopg.connect(conninfo) as conn:
            assert conn.execute("select n from seeded").fetchone() == (42,)
            assert conn.execute("show data_checksums").fetchone() == ("on",)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(psycopg.conninfo.make_conninfo(conninfo, password="wrong"))
        logs = b"".join(pg.get_logs()).decode()
    assert "init script saw POSTGRES_DB=shop" in logs
    assert "ready for start up" in logs


def test_postgres_refuses_to_start_without_a_password(
    docker_client: Any, postgres_image: str
) -> None:
    container = docker_client.containers.run(postgres_image, detach=True)
    try:
        # bounded: a server that starts anyway fails the test instead of hanging it
        status = container.wait(timeout=60)
        stderr: bytes = container.logs(stdout=False, stderr=True)
    finally:
        container.remove(force=True)
    assert status["StatusCode"] == 1
    assert b"POSTGRES_PASSWORD" in stderr


# --- redis ------------------------------------------------------------------------------------


def test_redis_image_configuration(docker_client: Any, redis_image: str) -> None:
    config = _config(docker_client, redis_image)
    assert config["Entrypoint"] == ["docker-entrypoint.sh"]
    assert config["Cmd"] == ["redis-server"]
    assert config["WorkingDir"] == "/data"
    assert "/data" in config["Volumes"]
    assert "6379/tcp" in config["ExposedPorts"]


def test_redis_fixture_answers_ping(redis_url: str) -> None:
    assert redis_url.startswith(f"redis://{LOOPBACK}:")
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.ping() is True
        assert client.config_get("protected-mode") == {"protected-mode": "no"}
        assert str(client.info("server")["redis_version"]).startswith("7.")
    finally:
        client.close()


def test_redis_runs_as_uid_999_as_pid_1(redis_container: Any) -> None:
    assert _pid1(redis_container) == ("999", "redis-server")


# --- helpers ------------------------------------------------------------------------------------


def test_fixture_ports_are_published_on_loopback_only(
    postgres_container: Any, redis_container: Any
) -> None:
    for container, port in ((postgres_container, 5432), (redis_container, 6379)):
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        bindings = wrapped.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"]
        assert {b["HostIp"] for b in bindings} == {LOOPBACK}


def test_containers_reach_each_other_on_a_created_network(
    docker_client: Any, docker_network: Any, redis_image: str
) -> None:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    server = DockerContainer(redis_image).with_network(docker_network)
    server.with_network_aliases("cache")
    server.waiting_for(LogMessageWaitStrategy("Ready to accept connections"))
    with server:
        out = _run(
            docker_client,
            redis_image,
            ["redis-cli", "-h", "cache", "ping"],
            entrypoint=[],
            network=docker_network.name,
        )
    assert out.strip() == "PONG"


def test_network_fixtures_answer_by_alias_and_on_loopback(
    docker_client: Any,
    docker_network: Any,
    postgres_image: str,
    redis_image: str,
    network_postgres: Any,
    network_redis: Any,
) -> None:
    assert NETWORK_POSTGRES_URL == "postgresql://boards:boards@db:5432/boards"
    assert NETWORK_REDIS_URL == "redis://redis:6379/0"
    # From another container on the test's network, by alias...
    on_network = {"entrypoint": [], "network": docker_network.name}
    ready = ["pg_isready", "-h", "db", "-U", "boards", "-d", "boards"]
    assert "accepting connections" in _run(docker_client, postgres_image, ready, **on_network)
    pong = _run(docker_client, redis_image, ["redis-cli", "-h", "redis", "ping"], **on_network)
    assert pong.strip() == "PONG"
    # ...and from the test, on 127.0.0.1.
    with psycopg.connect(postgres_url_of(network_postgres).replace("+psycopg", "", 1)) as conn:
        assert conn.execute("select current_user, current_database()").fetchone() == (
            "boards",
            "boards",
        )
    client = redis.Redis(host=LOOPBACK, port=loopback_port(network_redis, 6379))
    try:
        assert client.ping() is True
    finally:
        client.close()
