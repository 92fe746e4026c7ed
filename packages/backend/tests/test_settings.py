"""Settings: defaults, normalisation, and one clear line + exit code 2 for every bad value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from boards.settings import (
    Settings,
    SettingsError,
    default_alembic_ini,
    load_settings,
    load_settings_or_exit,
    rule,
)
from boards_testing.processes import base_env, run_boards


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.api_host == "0.0.0.0"
    assert settings.api_port == 8800
    assert settings.log_level == "info"
    assert settings.migrate_on_start is True
    assert settings.redis_url is None
    assert (settings.worker_processes, settings.worker_threads) == (1, 50)
    assert settings.worker_shutdown_timeout == 5
    assert settings.job_time_limit == 30
    assert settings.job_max_retries == 3
    assert settings.run_dir == Path("/tmp/boards")
    assert settings.api_max_body_bytes == 1_048_576
    assert (settings.job_lease, settings.job_max_deliveries) == (15, 5)
    assert (settings.reconcile_interval, settings.reconcile_queued_after) == (5, 10)
    assert settings.broker_heartbeat_timeout == 10
    assert settings.worker_metrics_port == 9191
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'data' / 'boards.db'}"
    assert settings.alembic_ini == default_alembic_ini()
    assert settings.alembic_ini.is_file(), "the source checkout's alembic.ini is found"


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BOARDS_API_PORT", "9000")
    monkeypatch.setenv("BOARDS_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("BOARDS_MIGRATE_ON_START", "false")
    monkeypatch.setenv("BOARDS_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("BOARDS_REDIS_URL", "redis://redis:6379/0")
    monkeypatch.setenv("BOARDS_API_HOST", "")  # empty = unset
    settings = load_settings()
    assert settings.api_port == 9000
    assert settings.log_level == "debug"
    assert settings.migrate_on_start is False
    assert settings.api_host == "0.0.0.0"
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'd' / 'boards.db'}"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/boards", "postgresql+psycopg://u:p@db:5432/boards"),
        ("postgresql://u:p@db/boards", "postgresql+psycopg://u:p@db/boards"),
        ("postgresql+psycopg://u@db/boards", "postgresql+psycopg://u@db/boards"),
        ("sqlite:////var/lib/boards.db", "sqlite:////var/lib/boards.db"),
    ],
)
def test_database_url_is_normalised(given: str, expected: str) -> None:
    settings = load_settings(database_url=given)
    assert settings.effective_database_url == expected


def test_worker_requires_redis() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(require_redis=True)
    assert caught.value.variable == "BOARDS_REDIS_URL"
    assert isinstance(load_settings(require_redis=True, redis_url="rediss://r:6380/1"), Settings)


def test_backoff_order_is_checked() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(job_retry_min_backoff=10, job_retry_max_backoff=5)
    assert caught.value.variable == "BOARDS_JOB_RETRY_MAX_BACKOFF"


#: Rejected URLs that carry a secret (``S3CRET``) in each place a URL can hold one.
SECRET_IN_BAD_URLS = [
    ("BOARDS_DATABASE_URL", "mysql://u:S3CRET@h/db"),
    ("BOARDS_DATABASE_URL", "mysql://u:S3%40CRET%3A@h/db"),
    ("BOARDS_DATABASE_URL", "mysql://u%3AS3CRET@h/db"),
    ("BOARDS_DATABASE_URL", "mysql://u:S3C@RET@h/db"),
    ("BOARDS_DATABASE_URL", "mysql://u@h/db?sslmode=require&password=S3CRET"),
    ("BOARDS_DATABASE_URL", "mysql://u@h/db?sslpassword=S3CRET&pass=S3CRET"),
    ("BOARDS_DATABASE_URL", "mysql://u@h/db?%70assword=S3CRET"),
    ("BOARDS_DATABASE_URL", "postgresql:/u:S3CRET@h/db"),
    ("BOARDS_REDIS_URL", "http://:S3CRET@redis:6379/0"),
    ("BOARDS_REDIS_URL", "http://user:S3CRET@redis:6379/0"),
    ("BOARDS_REDIS_URL", "https://S3CRET@redis:6379/0"),
    ("BOARDS_REDIS_URL", "http://redis:6379/0?token=S3CRET"),
]


@pytest.mark.parametrize(("variable", "value"), SECRET_IN_BAD_URLS)
def test_a_bad_url_setting_never_shows_its_secret(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    line = caught.value.line()
    assert line.startswith(f"invalid setting {variable}="), line
    assert "S3" not in line and "CRET" not in line, line
    assert "***" in line, line


def test_the_bad_setting_line_on_stderr_never_shows_the_secret() -> None:
    proc = run_boards(
        "migrate",
        env=base_env(BOARDS_DATABASE_URL="mysql://boards:S3%40CRET@db/boards?sslpassword=S3CRET"),
    )
    _assert_one_line(proc, "BOARDS_DATABASE_URL", "must be a SQLAlchemy URL")
    assert "S3" not in proc.stderr + proc.stdout
    assert "mysql://boards:***@db/boards?sslpassword=***" in proc.stderr


#: Words the one-line error for each setting must hold (its rule, or the part that matters).
RULE_WORDS = {
    "BOARDS_API_PORT": "must be an integer from 1 to 65535",
    "BOARDS_LOG_LEVEL": "critical, error, warning, info, debug",
    "BOARDS_DATABASE_URL": "sqlite, postgresql, postgres or postgresql+psycopg",
    "BOARDS_REDIS_URL": "redis:// or rediss://",
    "BOARDS_MIGRATE_ON_START": "must be a boolean",
    "BOARDS_WORKER_PROCESSES": "integer >= 1",
    "BOARDS_WORKER_THREADS": "integer >= 1",
    "BOARDS_WORKER_SHUTDOWN_TIMEOUT": "must be a number of seconds > 0 and <= 600",
    "BOARDS_JOB_TIME_LIMIT": "seconds > 0",
    "BOARDS_JOB_MAX_RETRIES": "integer >= 0",
    "BOARDS_API_HOST": "host name or IP address",
    "BOARDS_API_MAX_BODY_BYTES": "bytes from 1024 to 104857600",
    "BOARDS_JOB_LEASE": "seconds from 3 to 3600",
    "BOARDS_JOB_MAX_DELIVERIES": "integer from 1 to 100",
    "BOARDS_RECONCILE_INTERVAL": "seconds > 0 and <= 300",
    "BOARDS_RECONCILE_QUEUED_AFTER": "seconds from 8 to 3600",
    "BOARDS_BROKER_HEARTBEAT_TIMEOUT": "seconds from 2 to 600",
    "BOARDS_WORKER_METRICS_PORT": "must be an integer from 0 to 65535",
    "BOARDS_JOB_RETENTION": "must be a number of seconds from 60 to 315360000",
    "BOARDS_DATABASE_STATEMENT_TIMEOUT": "seconds from 0.1 to 3600",
}
#: (setting, a value it refuses).
BAD_VALUES = [
    ("BOARDS_API_PORT", "abc"),
    ("BOARDS_API_PORT", "70000"),
    ("BOARDS_API_PORT", "0"),
    ("BOARDS_LOG_LEVEL", "loud"),
    ("BOARDS_DATABASE_URL", "mysql://u@h/db"),
    ("BOARDS_DATABASE_URL", "not a url"),
    ("BOARDS_REDIS_URL", "http://redis:6379"),
    ("BOARDS_MIGRATE_ON_START", "maybe"),
    ("BOARDS_WORKER_PROCESSES", "0"),
    ("BOARDS_WORKER_THREADS", "many"),
    ("BOARDS_WORKER_SHUTDOWN_TIMEOUT", "-1"),
    ("BOARDS_JOB_TIME_LIMIT", "0"),
    ("BOARDS_JOB_MAX_RETRIES", "-1"),
    ("BOARDS_API_HOST", "two words"),
    ("BOARDS_API_MAX_BODY_BYTES", "100"),
    ("BOARDS_JOB_LEASE", "1"),
    ("BOARDS_JOB_MAX_DELIVERIES", "0"),
    ("BOARDS_RECONCILE_INTERVAL", "0"),
    ("BOARDS_RECONCILE_QUEUED_AFTER", "5"),
    ("BOARDS_BROKER_HEARTBEAT_TIMEOUT", "NaN"),
    ("BOARDS_WORKER_METRICS_PORT", "-1"),
    ("BOARDS_JOB_RETENTION", "0"),  # "delete at once" would break every retry and GET
    ("BOARDS_JOB_RETENTION", "1e12"),
    ("BOARDS_DATABASE_STATEMENT_TIMEOUT", "0"),  # PostgreSQL's "no limit": hangs come back
]


def _assert_one_line(proc: subprocess.CompletedProcess[str], variable: str, rule: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"boards: invalid setting {variable}"), lines[0]
    assert rule in lines[0]
    assert "Traceback" not in proc.stderr


# In-process: the loader every entry point calls. That a whole process prints only that line
# and exits 2 is shown below, once per role and entry module.
@pytest.mark.parametrize(("variable", "value"), BAD_VALUES)
def test_bad_value_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as exited:
        load_settings_or_exit()
    captured = capsys.readouterr()
    result = subprocess.CompletedProcess([], exited.value.code, captured.out, captured.err)
    _assert_one_line(result, variable, RULE_WORDS[variable])
    assert captured.out == ""
    assert repr(value) in captured.err


@pytest.mark.parametrize("role", ["api", "migrate", "worker"])
def test_every_role_rejects_a_bad_setting(role: str) -> None:
    proc = run_boards(
        role, env=base_env(BOARDS_API_PORT="abc", BOARDS_REDIS_URL="redis://127.0.0.1:1/0")
    )
    _assert_one_line(proc, "BOARDS_API_PORT", "must be an integer from 1 to 65535")


def test_worker_role_without_redis_exits_2() -> None:
    proc = run_boards("worker", env=base_env())
    _assert_one_line(proc, "BOARDS_REDIS_URL", "required by the worker")


@pytest.mark.parametrize("module", ["boards.api.app", "boards.workers.actors"])
def test_importing_an_entry_module_with_a_bad_setting_exits_2(module: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        env=base_env(BOARDS_LOG_LEVEL="chatty", BOARDS_REDIS_URL="redis://127.0.0.1:1/0"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    _assert_one_line(proc, "BOARDS_LOG_LEVEL", "must be one of")


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("api_port", "must be an integer from 1 to 65535"),
        ("worker_threads", "must be an integer >= 1"),
        ("worker_shutdown_timeout", "must be a number of seconds > 0 and <= 600"),
        ("api_max_body_bytes", "must be an integer of bytes from 1024 to 104857600"),
        ("log_level", "must be one of critical, error, warning, info, debug"),
        ("migrate_on_start", "must be a boolean (true/false, 1/0, yes/no, on/off)"),
        ("run_dir", "must be a directory path"),
    ],
)
def test_rules_are_read_off_the_fields(field: str, expected: str) -> None:
    assert rule(field) == expected


def test_every_setting_has_a_rule() -> None:
    for field in Settings.model_fields:
        assert rule(field).startswith("must be "), field
