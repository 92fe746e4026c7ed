"""``boards healthcheck``: the container HEALTHCHECK, for both roles. Standard library only:
it runs for the container's whole life and must not pay for pydantic or the app.

Exit 0 = healthy, 1 = unhealthy.

* Worker mode, when any ``worker-*.heartbeat`` file exists in BOARDS_RUN_DIR (default
  /tmp/boards): healthy iff the newest is younger than :data:`HEARTBEAT_MAX_AGE` seconds. Worker
  processes touch their file every 5 s, and only while Redis answers.
* API mode otherwise: ``GET http://127.0.0.1:$BOARDS_API_PORT/health`` answers 200 within 3 s
  (BOARDS_API_HOST instead of 127.0.0.1 when it names one address, not a wildcard).
"""

from __future__ import annotations

import http.client
import os
import sys
import time

from boards import defaults

HEARTBEAT_MAX_AGE = 20.0
#: Worker processes write ``<run dir>/worker-<pid>.heartbeat`` (boards.workers.middleware).
HEARTBEAT_PREFIX = "worker-"
HEARTBEAT_SUFFIX = ".heartbeat"
HTTP_TIMEOUT = 3.0
_WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]", "*"}  # noqa: S104 (names, not a bind)


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def newest_heartbeat_age(run_dir: str | os.PathLike[str], now: float | None = None) -> float | None:
    """Age in seconds of the newest heartbeat file, or None if there is none."""
    newest: float | None = None
    try:
        with os.scandir(run_dir) as entries:
            for entry in entries:
                name = entry.name
                if not (name.startswith(HEARTBEAT_PREFIX) and name.endswith(HEARTBEAT_SUFFIX)):
                    continue
                try:
                    mtime = entry.stat().st_mtime
                except OSError:  # removed meanwhile
                    continue
                newest = mtime if newest is None else max(newest, mtime)
    except OSError:
        return None
    if newest is None:
        return None
    return max(0.0, (time.time() if now is None else now) - newest)


def check_worker(age: float) -> tuple[bool, str]:
    if age <= HEARTBEAT_MAX_AGE:
        return True, f"worker heartbeat {age:.1f}s old"
    return False, f"worker heartbeat stale: {age:.1f}s old (max {HEARTBEAT_MAX_AGE:.0f}s)"


def api_address() -> tuple[str, int]:
    """Host and port of the API in this container (a wildcard bind is probed on loopback)."""
    host = _env("BOARDS_API_HOST", "127.0.0.1").strip("[]")
    if host in _WILDCARD_HOSTS or host == "localhost":
        host = "127.0.0.1"
    port = _env("BOARDS_API_PORT", str(defaults.API_PORT))
    return host, int(port) if port.isdigit() else -1


def health_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/health" if ":" in host else f"http://{host}:{port}/health"


def api_url() -> str:
    return health_url(*api_address())


def check_api(host: str, port: int, timeout: float = HTTP_TIMEOUT) -> tuple[bool, str]:
    """``GET /health``: healthy iff it answers 200."""
    url = health_url(host, port)
    if not 0 < port < 65536:
        return False, f"bad BOARDS_API_PORT for {url}"
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", "/health")
        status = connection.getresponse().status
    except (OSError, UnicodeError) as exc:  # UnicodeError: a host name idna cannot encode
        return False, f"GET {url} failed: {exc}"
    except http.client.HTTPException as exc:
        return False, f"GET {url}: not an HTTP answer ({exc!r})"
    finally:
        connection.close()
    if status == 200:
        return True, f"GET {url} -> 200"
    return False, f"GET {url} -> {status}"


def main() -> int:
    run_dir = _env("BOARDS_RUN_DIR", defaults.RUN_DIR)
    age = newest_heartbeat_age(run_dir)
    healthy, detail = check_worker(age) if age is not None else check_api(*api_address())
    stream = sys.stdout if healthy else sys.stderr
    stream.write(("healthy: " if healthy else "unhealthy: ") + detail + "\n")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
