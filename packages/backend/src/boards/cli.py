"""``boards``: the image's entry point. Dispatches a role, or runs any other command as given.

Usage::

    boards api [UVICORN-ARGS...]        migrate (if BOARDS_MIGRATE_ON_START), then serve (uvicorn)
    boards worker [DRAMATIQ-ARGS...]    exec dramatiq-gevent (needs BOARDS_REDIS_URL)
    boards migrate                      upgrade the database to the latest schema and exit
    boards healthcheck                  container health check (API or worker, found out itself)
    boards COMMAND [ARGS...]            exec COMMAND as given (uvicorn ..., dramatiq-gevent ...,
                                        bash, ...)

Exit codes: :data:`boards.exits.MEANINGS` (also in ``boards --help``).

``api`` runs uvicorn in this process and ``worker`` replaces it (``exec``) with dramatiq, so the
server is PID 1 in the container and receives SIGTERM itself. Startup stays fast: nothing heavy
(FastAPI, dramatiq) is imported before a role needs it, and the API imports itself while its
migration runs beside it.
"""

from __future__ import annotations

import os
import sys

from boards import exits
from boards.exits import FAILURE as EXIT_FAILURE
from boards.exits import NOT_EXECUTABLE as EXIT_NOT_EXECUTABLE
from boards.exits import NOT_FOUND as EXIT_NOT_FOUND
from boards.exits import OK as EXIT_OK
from boards.exits import USAGE as EXIT_USAGE

# `boards healthcheck` starts here every few seconds: typing and collections.abc alone would
# cost it half of its imports. The usual constant, which type checkers read as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn

    from boards.settings import Settings

#: Seconds uvicorn waits for open requests after SIGTERM (well inside Docker's 10 s).
API_GRACEFUL_SHUTDOWN = 3

USAGE = (
    (__doc__ or "").split("Usage::", 1)[1].split("Exit codes:", 1)[0].rstrip()
    + "\n\nExit codes:\n\n"
    + "\n".join(
        f"    {code:<4} {meaning.replace('`', '')}" for code, meaning in exits.MEANINGS.items()
    )
)


def _err(line: str) -> None:
    sys.stderr.write(f"boards: {line}\n")
    sys.stderr.flush()


def _resolve(program: str) -> str:
    """Prefer the executable next to this interpreter (the venv), then PATH."""
    if os.sep in program:
        return program
    import shutil

    sibling = os.path.join(os.path.dirname(sys.executable), program)
    if os.path.isfile(sibling) and os.access(sibling, os.X_OK):
        return sibling
    return shutil.which(program) or program


def exec_command(argv: Sequence[str]) -> NoReturn:
    """Replace this process with ``argv``; 127/126 with one line when that is impossible."""
    sys.stdout.flush()
    sys.stderr.flush()
    program = _resolve(argv[0])
    try:
        os.execvp(program, list(argv))  # noqa: S606 (exec is the point: no shell involved)
    except FileNotFoundError:
        _err(f"command not found: {argv[0]}")
        raise SystemExit(EXIT_NOT_FOUND) from None
    except PermissionError:
        _err(f"command not executable: {argv[0]}")
        raise SystemExit(EXIT_NOT_EXECUTABLE) from None
    except OSError as exc:
        _err(f"cannot run {argv[0]}: {exc.strerror or exc}")
        raise SystemExit(EXIT_NOT_EXECUTABLE) from None


def _settings(*, require_redis: bool = False, api: bool = False) -> Settings:
    from boards.settings import load_settings_or_exit

    return load_settings_or_exit(require_redis=require_redis, api=api)


def _migrate(settings: Settings) -> int:
    import logging

    from boards.logs import configure_logging, one_line

    configure_logging(settings.log_level)
    log = logging.getLogger("boards.migrations")
    try:
        from boards.migrations import upgrade_to_head

        upgrade_to_head(settings.effective_database_url, settings.alembic_ini)
    except Exception as exc:
        log.error("migration failed: %s", one_line(exc))
        return EXIT_FAILURE
    return EXIT_OK


def uvicorn_argv(settings: Settings, extra: Sequence[str] = ()) -> list[str]:
    """uvicorn's command line for the API (``boards api`` runs it in this process)."""
    return [
        "boards.api.app:app",
        "--host",
        settings.api_host,
        "--port",
        str(settings.api_port),
        "--log-level",
        settings.log_level,
        "--timeout-graceful-shutdown",
        str(API_GRACEFUL_SHUTDOWN),
        "--timeout-keep-alive",
        str(settings.api_keep_alive_timeout),
        # uvicorn's h11 protocol plus head and body deadlines and a connection cap, which
        # uvicorn lacks (boards/api/protocol.py says why).
        "--http",
        "boards.api.protocol:BoundedH11Protocol",
        "--proxy-headers",
        "--no-server-header",
        *extra,
    ]


def run_api(extra: Sequence[str]) -> int:
    settings = _settings(api=True)  # a bad token file stops it before the migration starts
    # The migration runs in a child (`boards migrate`) while this process imports the app: the
    # two take about as long each, and there are two cores. The app serves only once the schema
    # is at head, so no request ever meets a half-migrated database.
    import subprocess

    migration = (
        subprocess.Popen([sys.executable, "-m", "boards", "migrate"])
        if settings.migrate_on_start
        else None
    )
    # uvicorn restores the SIGTERM disposition it found and re-raises the signal after its
    # graceful shutdown. Found as "ignore", that re-raise is a no-op and the process exits 0,
    # also when it is not PID 1 (docker run --init, tests). As PID 1 the kernel ignores a
    # default SIGTERM anyway. Set after the child is started, which must stay stoppable.
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    import boards.api.app  # noqa: F401 (imported here, beside the migration; uvicorn reuses it)

    if migration is not None and migration.wait() != EXIT_OK:
        return EXIT_FAILURE  # the child has said why
    from uvicorn.main import main as uvicorn_main

    # Same process, so the container's PID 1 is the server; uvicorn's own CLI parses the
    # arguments (`boards api --workers 2 ...`) and exits with uvicorn's exit code.
    uvicorn_main.main(args=uvicorn_argv(settings, extra), prog_name="uvicorn")
    return EXIT_OK


def worker_argv(settings: Settings, extra: Sequence[str] = ()) -> list[str]:
    argv = [
        "dramatiq-gevent",
        "boards.workers.actors:broker",
        "--processes",
        str(settings.worker_processes),
        "--threads",
        str(settings.worker_threads),
        "--worker-shutdown-timeout",
        str(int(settings.worker_shutdown_timeout * 1000)),
    ]
    if settings.log_level == "debug":
        argv.append("--verbose")
    return [*argv, *extra]


def prepare_worker_metrics(settings: Settings) -> None:
    """Point dramatiq's Prometheus middleware at BOARDS_WORKER_METRICS_PORT and give it an
    empty multiprocess directory (files of a previous run would be added to this one's)."""
    if settings.worker_metrics_port == 0:
        return
    import shutil

    metrics_dir = settings.run_dir / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    # dramatiq reads these lower-case names.
    os.environ["dramatiq_prom_db"] = str(metrics_dir)  # noqa: SIM112
    os.environ["dramatiq_prom_port"] = str(settings.worker_metrics_port)  # noqa: SIM112


#: dramatiq's `dramatiq_worker_timeout` (ms): how often each idle worker thread wakes to see
#: whether it should stop. New jobs do not wait on it (the work queue and the wake-up channel
#: hand them over at once, boards.workers.wakeup), so it only bounds how long a stop takes,
#: and every wake of the 50 threads costs an idle worker CPU.
WORKER_TIMEOUT_MS = 1000


def run_worker(extra: Sequence[str]) -> int:
    settings = _settings(require_redis=True)
    prepare_worker_metrics(settings)
    os.environ.setdefault("dramatiq_worker_timeout", str(WORKER_TIMEOUT_MS))
    exec_command(worker_argv(settings, extra))


def run_migrate(extra: Sequence[str]) -> int:
    if extra:
        _err(f"migrate takes no arguments (got {' '.join(extra)!r})")
        return EXIT_USAGE
    return _migrate(_settings())


def run_healthcheck(extra: Sequence[str]) -> int:
    from boards.healthcheck import main as healthcheck_main

    return healthcheck_main()


ROLES = {
    "api": run_api,
    "worker": run_worker,
    "migrate": run_migrate,
    "healthcheck": run_healthcheck,
}


def dispatch(argv: Sequence[str]) -> int:
    if not argv:
        sys.stderr.write(f"usage:{USAGE}\n")
        return EXIT_USAGE
    if argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(f"usage:{USAGE}\n")
        return EXIT_OK
    role = ROLES.get(argv[0])
    if role is not None:
        return role(argv[1:])
    exec_command(argv)


def main() -> None:
    """Console script ``boards``."""
    sys.exit(dispatch(sys.argv[1:]))


def migrate() -> None:
    """Console script ``boards-migrate`` (= ``boards migrate``)."""
    sys.exit(dispatch(["migrate", *sys.argv[1:]]))
