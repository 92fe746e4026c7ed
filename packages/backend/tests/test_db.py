"""The Database handle: created once, and whole, whichever thread asks first."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import boards.db
import pytest
from boards.db import Database
from sqlalchemy import Engine


def test_a_second_thread_never_sees_a_half_made_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API's warm-up thread and its intake thread may both be first: the one that waits must
    get the engine with its autocommit twin, not an engine alone (an AssertionError, a 500)."""
    made, go_on = threading.Event(), threading.Event()
    real_new_engine = boards.db.new_engine

    class SlowOptions:  # the engine, holding its creator right after it exists
        def __init__(self, engine: Engine) -> None:
            self._engine = engine

        def execution_options(self, **options: Any) -> Engine:
            made.set()
            assert go_on.wait(5)
            return self._engine.execution_options(**options)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._engine, name)

    monkeypatch.setattr(
        boards.db, "new_engine", lambda *args, **kw: SlowOptions(real_new_engine(*args, **kw))
    )
    db = Database(f"sqlite:///{tmp_path / 'boards.db'}")
    first = threading.Thread(target=lambda: db.autocommit)
    first.start()
    assert made.wait(5)
    errors: list[BaseException] = []

    def second() -> None:
        try:
            db.autocommit.connect().close()
        except BaseException as exc:
            errors.append(exc)

    waiter = threading.Thread(target=second)
    waiter.start()
    waiter.join(0.2)  # time to reach the pool: it must be waiting for the first, not failing
    assert waiter.is_alive()
    go_on.set()
    first.join(5)
    waiter.join(5)
    assert errors == []
    db.dispose()
