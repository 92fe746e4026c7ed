"""The ``boards`` dispatcher: roles, pass-through exec, exit codes, fast start."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from boards.cli import worker_argv
from boards.migrations import head_revision
from boards.settings import default_alembic_ini, load_settings
from boards_testing.processes import (
    BIN,
    BOARDS,
    base_env,
    free_port,
    run_boards,
    serve_api,
    stop_process,
)
from dramatiq.cli import make_argument_parser

#: The schema revision every migration here ends at.
HEAD = head_revision(default_alembic_ini())


def test_help_lists_roles_and_exit_codes() -> None:
    proc = run_boards("--help")
    assert proc.returncode == 0
    for word in ("api", "worker", "migrate", "healthcheck", "127", "2 "):
        assert word in proc.stdout


def test_no_arguments_is_a_usage_error() -> None:
    proc = run_boards()
    assert proc.returncode == 2
    assert "usage" in proc.stderr


def test_unknown_command_exits_127_with_one_line() -> None:
    proc = run_boards("nosuchcmd-boards", "--flag")
    assert proc.returncode == 127
    assert proc.stderr.strip().splitlines() == ["boards: command not found: nosuchcmd-boards"]


def test_other_commands_run_as_given() -> None:
    assert run_boards("true").returncode == 0
    proc = run_boards("sh", "-c", 'echo "$0 $1"; exit 7', "a b", "c")
    assert proc.returncode == 7
    assert proc.stdout == "a b c\n"


def test_exec_replaces_the_process() -> None:
    """The command keeps the dispatcher's PID (so the server is PID 1 in a container)."""
    proc = subprocess.Popen(
        [BOARDS, "sh", "-c", "echo $$"], stdout=subprocess.PIPE, text=True, env=base_env()
    )
    out, _ = proc.communicate(timeout=60)
    assert int(out) == proc.pid


def test_boards_migrate_console_script(tmp_path: Path) -> None:
    env = base_env(BOARDS_DATA_DIR=str(tmp_path / "data"))
    proc = subprocess.run(
        [str(BIN / "boards-migrate")], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "data" / "boards.db").is_file()
    assert f"upgraded to {HEAD}" in proc.stderr


def test_migrate_rejects_arguments() -> None:
    proc = run_boards("migrate", "head")
    assert proc.returncode == 2
    assert "migrate takes no arguments" in proc.stderr


def test_failed_migration_exits_1_and_says_so() -> None:
    port = free_port()  # nothing listens there
    env = base_env(BOARDS_DATABASE_URL=f"postgresql://u:secret@127.0.0.1:{port}/db")
    for role in ("migrate", "api"):
        proc = run_boards(role, env=env)
        assert proc.returncode == 1, proc.stderr
        assert "migration failed: " in proc.stderr
        assert "Traceback" not in proc.stderr
        assert "secret" not in proc.stderr
        assert "Uvicorn running" not in proc.stderr  # the API never serves an unmigrated schema


def test_dispatcher_imports_nothing_heavy() -> None:
    code = (
        "import sys, boards.cli, boards.healthcheck\n"
        "heavy = {'fastapi', 'dramatiq', 'sqlalchemy', 'pydantic', 'alembic', 'gevent'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == "[]"


def test_worker_command_line_is_valid_for_dramatiq() -> None:
    settings = load_settings(
        redis_url="redis://r:6379/0",
        worker_processes=2,
        worker_threads=8,
        worker_shutdown_timeout=4.5,
    )
    argv = worker_argv(settings, ["--queues", "boards-jobs"])
    assert argv[:2] == ["dramatiq-gevent", "boards.workers.actors:broker"]
    args = make_argument_parser().parse_args(argv[1:])
    assert args.broker == "boards.workers.actors:broker"
    assert (args.processes, args.threads) == (2, 8)
    assert args.worker_shutdown_timeout == 4500
    assert args.queues == ["boards-jobs"]


def test_api_role_migrates_then_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    with serve_api(tmp_path, timeout=90, BOARDS_DATA_DIR=str(tmp_path / "data")) as api:
        pid = api.proc.pid
        # The server is the `boards api` process itself (PID 1 in a container), and the
        # migration child it ran beside the app's import has exited.
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[-2:] == [b"api", b""], cmdline
        assert Path(f"/proc/{pid}/task/{pid}/children").read_text().split() == []
        body = httpx.get(f"{api.url}/api/v1/system/health", timeout=10).json()
        assert body["migrations"] == {
            "current": HEAD,
            "head": HEAD,
            "status": "ok",
            "detail": None,
        }
        assert run_boards("healthcheck", env=api.env).returncode == 0
        started = time.monotonic()
        assert stop_process(api.proc) == 0
        assert time.monotonic() - started < 10
    text = api.log.read_text()
    assert f"upgraded to {HEAD}" in text
    assert "Uvicorn running" in text


@pytest.mark.parametrize("value", ["false", "0"])
def test_api_role_can_skip_migrations(tmp_path: Path, value: str) -> None:
    # Port already taken: uvicorn starts (no migration first) and fails to bind -> non-zero.
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = base_env(
            BOARDS_DATA_DIR=str(tmp_path / "data"),
            BOARDS_API_HOST="127.0.0.1",
            BOARDS_API_PORT=str(port),
            BOARDS_MIGRATE_ON_START=value,
        )
        proc = run_boards("api", env=env)
    assert proc.returncode != 0
    assert "migrat" not in proc.stderr.lower()
    assert not (tmp_path / "data" / "boards.db").exists()
