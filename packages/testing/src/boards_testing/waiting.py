"""Waiting on a condition that has no event to wait on (a job's status, an HTTP answer)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


def wait_for(
    predicate: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.2, what: str = ""
) -> Any:
    """Poll ``predicate`` until it returns something truthy and return that; fail the test after
    ``timeout`` seconds, saying what was awaited and the last answer."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(
        f"timed out after {timeout:.0f}s waiting for {what or predicate!r} (last: {last!r})"
    )
