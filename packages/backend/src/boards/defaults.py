"""Defaults that a standard-library-only caller needs too (``boards.healthcheck`` runs every
few seconds and must not pay for importing pydantic). :class:`boards.settings.Settings` takes
its defaults from here, so each is written once."""

API_HOST = "0.0.0.0"  # noqa: S104 (a server's default listen address)
API_PORT = 8800
RUN_DIR = "/tmp/boards"  # noqa: S108 (per-container scratch dir: heartbeats, worker metrics)
#: Database connections each process may open (BOARDS_DATABASE_POOL_SIZE): 4 lets the autoscaling
#: overlay's maximum (10 API + 10 worker replicas) fit PostgreSQL's default max_connections.
DATABASE_POOL_SIZE = 4
#: Seconds a broker (API or worker) may stay silent before dramatiq presumes it dead
#: (BOARDS_BROKER_HEARTBEAT_TIMEOUT).
BROKER_HEARTBEAT_TIMEOUT = 10.0
