"""The API against its own OpenAPI schema: ``schemathesis run --checks all`` on a real ``boards
api`` server (PostgreSQL, Redis, an API token file as in production; schemathesis sends the token
and checks that requests without it are refused). Every answer to generated requests, valid
and invalid, is one the schema declares, in the shape it declares; what the schema allows is
accepted and what it forbids is refused.

Bounded: a fixed seed, deterministic generation, MAX_EXAMPLES per operation and phase, and a
time budget for the fuzzing and stateful phases (MAX_SECONDS).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from boards_testing.processes import BIN, base_env, serve_api

MAX_EXAMPLES = 25
MAX_SECONDS = 20
TOKEN = "schemathesis-token-0123456789"
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
# The longest test of all: `just test` runs it, the fast tier between edits does not.
pytestmark = pytest.mark.fuzz
CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture
def server(fresh_pg_url: str, clean_redis_url: str, tmp_path: Path) -> Iterator[str]:
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKEN + "\n")
    with serve_api(
        tmp_path,
        ready="/health/ready",
        BOARDS_API_TOKENS_FILE=str(tokens),
        BOARDS_DATABASE_URL=fresh_pg_url,
        BOARDS_REDIS_URL=clean_redis_url,
        BOARDS_LOG_LEVEL="warning",
    ) as api:
        yield api.url


def test_the_api_answers_as_its_schema_says(server: str, tmp_path: Path) -> None:
    run = subprocess.run(
        [
            str(BIN / "schemathesis"),
            "--config-file",
            str(CONFIG),
            "run",
            f"{server}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            "1",
            "--generation-deterministic",
            "--max-time",
            str(MAX_SECONDS),
            "--header",
            f"Authorization: Bearer {TOKEN}",
            "--workers",
            "1",
            "--no-color",
            "--output-truncate",
            "true",
            "--report-dir",
            str(tmp_path / "report"),
        ],
        env=base_env(SCHEMATHESIS_HOOKS=str(HOOKS)),
        cwd=tmp_path,  # its .schemathesis cache stays out of the tree
        capture_output=True,
        text=True,
        timeout=MAX_SECONDS + 60,
        check=False,
    )
    (tmp_path / "schemathesis.txt").write_text(run.stdout)
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
