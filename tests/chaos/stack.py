"""The real stack the chaos suite breaks: PostgreSQL, Redis (AOF on a volume, as in compose.yaml),
one API and two workers of the backend image, on a docker network the suite creates, every port
published on 127.0.0.1 only. Each container is a :class:`Service` with the faults the suite injects
(SIGKILL, start again, docker stop/restart/pause) and a readiness probe to wait on afterwards.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import redis
from boards_testing.plugin import (
    LOOPBACK,
    NETWORK_POSTGRES_ALIAS,
    NETWORK_REDIS_ALIAS,
    loopback_port,
    new_postgres_container,
    new_redis_container,
    postgres_url_of,
)
from boards_testing.waiting import wait_for
from docker import DockerClient
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from tests.image.support import API_PORT, NETWORK_DB_URL, NETWORK_REDIS_URL, backend

WORKER_METRICS_PORT = 9191
#: Seconds a container gets to become ready after it was (re)started.
READY_TIMEOUT = 90
#: The backend's settings stay at their shipped defaults (lease 15 s, reconcile every 5 s,
#: queued jobs re-enqueued after 10 s, broker heartbeat 10 s): the suite shows the 30 s bounds
#: hold as shipped, not with settings tuned for the test. Only the worker's metrics port is named.
BACKEND_ENV = {
    "BOARDS_DATABASE_URL": NETWORK_DB_URL,
    "BOARDS_REDIS_URL": NETWORK_REDIS_URL,
    "BOARDS_WORKER_METRICS_PORT": str(WORKER_METRICS_PORT),
}
#: compose.yaml's hardening for the backend services.
HARDENING: dict[str, Any] = {
    "read_only": True,
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
}


@dataclass
class Service:
    """One container of the stack. The faults act on the same container (its file system and
    volumes survive), the way a restart policy brings a crashed service back."""

    name: str
    container: DockerContainer
    probe: Callable[[Service], bool]
    #: How often the container was (re)started; a new incarnation starts its counters at 0.
    incarnation: int = 0

    @property
    def docker(self) -> Any:
        return self.container.get_wrapped_container()

    def port(self, container_port: int) -> int:
        """The host port on 127.0.0.1; it changes every time the container starts."""
        return loopback_port(self.container, container_port)

    def ready(self) -> bool:
        try:
            return self.probe(self)
        except Exception:  # any failure to answer is "not ready yet"
            return False

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        wait_for(self.ready, timeout=timeout, interval=0.25, what=f"{self.name} to be ready")

    def kill(self) -> None:
        """SIGKILL: what the OOM killer or a crash does. No shutdown code runs."""
        self.docker.kill(signal="SIGKILL")
        wait_for(lambda: not self.running(), timeout=10, what=f"{self.name} to die")

    def stop(self) -> None:
        """docker stop: SIGTERM, then the graceful shutdown."""
        self.docker.stop(timeout=10)

    def start(self) -> None:
        self.docker.start()
        self.incarnation += 1

    def restart(self) -> None:
        self.docker.restart(timeout=10)
        self.incarnation += 1

    def pause(self) -> None:
        self.docker.pause()

    def unpause(self) -> None:
        self.docker.unpause()

    def status(self) -> str:
        self.docker.reload()
        return str(self.docker.status)

    def running(self) -> bool:
        return self.status() == "running"

    def ensure_up(self) -> None:
        """Undo whatever a failed fault left behind: unpause or start, then wait until ready."""
        status = self.status()
        if status == "paused":
            self.unpause()
        elif status != "running":
            self.start()
        self.wait_ready()


# -- readiness probes ----------------------------------------------------------------------------


def postgres_url(service: Service) -> str:
    """The plugin's URL for this server, in libpq's form (psycopg.connect)."""
    return postgres_url_of(service.container).replace("postgresql+psycopg://", "postgresql://")


def redis_url(service: Service) -> str:
    return f"redis://{LOOPBACK}:{service.port(6379)}/0"


def postgres_answers(service: Service) -> bool:
    with psycopg.connect(postgres_url(service), connect_timeout=2) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


def redis_answers(service: Service) -> bool:
    client = redis.Redis.from_url(redis_url(service), socket_timeout=2, socket_connect_timeout=2)
    with contextlib.closing(client):
        return bool(client.ping())


def api_ready(service: Service) -> bool:
    """The API's readiness route: database at head and broker answering."""
    url = f"http://{LOOPBACK}:{service.port(API_PORT)}/health/ready"
    return httpx.get(url, timeout=5).status_code == 200


def worker_healthy(service: Service) -> bool:
    """The image's own HEALTHCHECK command, run now rather than at Docker's next interval."""
    return bool(service.container.exec(["boards", "healthcheck"]).exit_code == 0)


# -- the stack -----------------------------------------------------------------------------------


@dataclass
class Stack:
    postgres: Service
    redis: Service
    api: Service
    workers: list[Service]
    #: http://127.0.0.1:PORT of the API; refreshed whenever the API starts again.
    api_url: str = ""
    services: list[Service] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.services = [self.postgres, self.redis, self.api, *self.workers]
        self.refresh_api_url()

    def refresh_api_url(self) -> str:
        self.api_url = f"http://{LOOPBACK}:{self.api.port(API_PORT)}"
        return self.api_url

    @property
    def database_url(self) -> str:
        return postgres_url(self.postgres)

    @property
    def redis_url(self) -> str:
        return redis_url(self.redis)

    def start_api(self) -> None:
        """Start the (killed) API again and wait until it serves; its port is a new one."""
        self.api.start()
        self.api.wait_ready()
        self.refresh_api_url()

    def ensure_up(self) -> None:
        """Every service running and ready (dependencies first), whatever the last test did."""
        for service in self.services:
            service.ensure_up()
        self.refresh_api_url()

    def worker_metric(self, name: str, skip: str = "") -> dict[tuple[str, int], float] | None:
        """``name``'s value (summed over its label sets, but those holding ``skip``) per worker
        incarnation; None when no worker serves metrics at all."""
        values: dict[tuple[str, int], float] = {}
        for worker in self.workers:
            try:
                url = f"http://{LOOPBACK}:{worker.port(WORKER_METRICS_PORT)}/metrics"
                text = httpx.get(url, timeout=2).raise_for_status().text
            except Exception:  # a dead worker, or one without metrics: nothing to count
                continue
            values[(worker.name, worker.incarnation)] = sum_metric(text, name, skip)
        return values or None

    def kill_together(self, *services: Service) -> None:
        """SIGKILL ``services`` back to back (no wait in between), then wait until all are dead."""
        for service in services:
            service.docker.kill(signal="SIGKILL")
        for service in services:
            wait_for(lambda s=service: not s.running(), timeout=10, what=f"{service.name} to die")

    def terminate_backends(self) -> int:
        """pg_terminate_backend on every other connection to the database (the API's and the
        workers'): what a failover or an administrator does. Returns how many were terminated."""
        with psycopg.connect(self.database_url, connect_timeout=3, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE pid <> pg_backend_pid() AND datname = current_database()"
            ).fetchall()
        return sum(1 for (done,) in rows if done)

    def backends(self) -> int:
        """Connections the backend holds now."""
        with psycopg.connect(self.database_url, connect_timeout=3) as conn:
            return backend_connections(conn)

    def redis_client(self) -> contextlib.closing[redis.Redis]:
        return contextlib.closing(redis.Redis.from_url(self.redis_url, socket_timeout=5))

    def queued_messages(self) -> int:
        """Messages waiting in Redis: dramatiq's queues are the lists under ``dramatiq:*``."""
        with self.redis_client() as client:
            return sum(
                client.llen(key)
                for key in client.scan_iter("dramatiq:*")
                if client.type(key) == b"list"
            )


def backend_connections(conn: psycopg.Connection[Any]) -> int:
    """The backend's connections (its sessions are named ``boards-api`` and ``boards-worker``),
    seen over ``conn`` (when the server has no slot left for a new one)."""
    ((count,),) = conn.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name LIKE 'boards-%' AND datname = current_database()"
    ).fetchall()
    return int(count)


def sum_metric(text: str, name: str, skip: str = "") -> float:
    """The sum over the label sets of ``name`` in a Prometheus text exposition (0 if absent: a
    labelled counter appears only once it counted something)."""
    total = 0.0
    for line in text.splitlines():
        ours = line.startswith(name) and line[len(name) : len(name) + 1] in {"{", " "}
        if ours and not (skip and skip in line):
            total += float(line.rsplit(None, 1)[-1])
    return total


@contextlib.contextmanager
def running_stack(
    image: str, postgres_image: str, redis_image: str, docker_client: DockerClient, workers: int = 2
) -> Iterator[Stack]:
    """Start the stack; remove every container, the network and the volume afterwards."""
    prefix = f"chaos-{uuid.uuid4().hex[:8]}"
    with contextlib.ExitStack() as cleanup:
        network = cleanup.enter_context(Network())
        volume = docker_client.volumes.create(f"{prefix}-redis-data")
        cleanup.callback(volume.remove, force=True)

        def service(name: str, container: DockerContainer, probe: Callable[[Service], bool]):
            container.with_name(f"{prefix}-{name}").with_network(network)
            cleanup.enter_context(container)  # started here, removed (with -v) on the way out
            started = Service(name, container, probe)
            started.wait_ready()
            return started

        # The plugin's servers and credentials (NETWORK_POSTGRES_URL is what the backend gets).
        pg = new_postgres_container(postgres_image).with_network_aliases(NETWORK_POSTGRES_ALIAS)
        redis_server = (
            new_redis_container(redis_image)
            # AOF on a volume, as compose.yaml runs it.
            .with_command("redis-server --appendonly yes --appendfsync everysec")
            .with_volume_mapping(volume.name, "/data", "rw")
            .with_network_aliases(NETWORK_REDIS_ALIAS)
        )
        postgres = service("postgres", pg, postgres_answers)
        broker = service("redis", redis_server, redis_answers)

        def backend_container(*command: str, port: int) -> DockerContainer:
            container = backend(image, *command, env=BACKEND_ENV, port=port, **HARDENING)
            container.tmpfs["/tmp"] = "rw,nosuid,nodev"  # compose.yaml: tmpfs /tmp, read-only root
            return container

        api = service("api", backend_container("api", port=API_PORT), api_ready)
        worker_services = [
            service(
                f"worker{i}", backend_container("worker", port=WORKER_METRICS_PORT), worker_healthy
            )
            for i in range(1, workers + 1)
        ]
        yield Stack(postgres=postgres, redis=broker, api=api, workers=worker_services)
