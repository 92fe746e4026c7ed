"""Fixtures for the fault-injection suite: the image (tests/conftest.py), one stack for the
whole package, the table of results, and the terminal summary that prints it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker import DockerClient

from tests.chaos.load import Jobs, Load
from tests.chaos.recorder import Recorder
from tests.chaos.stack import Stack, running_stack

HERE = Path(__file__).parent
#: The phases in order: load, then the faults, then hostile input (each phase's table rows in
#: the order it ran).
PHASES = ("test_load.py", "test_faults.py", "test_hostile_input.py")
RESULTS = pytest.StashKey[Recorder]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RESULTS] = Recorder()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the chaos phases in their order, after the rest of the session (sorted is stable)."""

    def phase(item: pytest.Item) -> int:
        path = Path(str(item.path))
        return PHASES.index(path.name) + 1 if path.parent == HERE and path.name in PHASES else 0

    items.sort(key=phase)


@pytest.fixture(scope="package")
def stack(
    backend_image: str, postgres_image: str, redis_image: str, docker_client: DockerClient
) -> Iterator[Stack]:
    with running_stack(backend_image, postgres_image, redis_image, docker_client) as started:
        yield started


@pytest.fixture(autouse=True)
def stack_up(stack: Stack) -> Stack:
    """Each phase starts on a whole stack, whatever the phase before it broke."""
    stack.ensure_up()
    return stack


@pytest.fixture
def load(stack: Stack) -> Load:
    return Load(lambda: stack.api_url)


@pytest.fixture
def jobs(stack: Stack) -> Jobs:
    return Jobs(lambda: stack.database_url)


@pytest.fixture(scope="session")
def recorder(pytestconfig: pytest.Config) -> Recorder:
    return pytestconfig.stash[RESULTS]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    recorder = config.stash.get(RESULTS, None)
    hostile = [
        report
        for key in ("passed", "failed")
        for report in terminalreporter.stats.get(key, [])
        if getattr(report, "when", None) == "call" and "test_hostile_input.py" in report.nodeid
    ]
    if not (recorder and recorder.rows) and not hostile:
        return
    terminalreporter.section("boards chaos: faults survived")
    for line in recorder.table() if recorder else []:
        terminalreporter.line(line)
    if hostile:
        failed = [r.nodeid.split("::", 1)[1] for r in hostile if r.failed]
        terminalreporter.line(
            f"hostile input: {len(hostile) - len(failed)} of {len(hostile)} checks passed "
            "(4xx in the JSON error shape, no internals, request ids, 413 before the body)"
            + (f"; FAILED: {', '.join(failed)}" if failed else "")
        )
