"""The suite's table: one row per phase (fault | jobs accepted | jobs final | jobs lost | seconds to
recover | bounds), filled as each phase runs and printed by conftest's terminal summary."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from boards_testing.waiting import wait_for

from tests.chaos.load import FINAL, Jobs
from tests.chaos.stack import Stack

#: The worker counter of jobs the reconciler re-sent (its gave_up label set is no re-delivery).
REDELIVERIES = ("boards_job_redeliveries_total", 'reason="gave_up"')


@dataclass
class Row:
    fault: str
    #: Jobs answered 202 in this phase: every one must reach a final state.
    ids: list[str] = field(default_factory=list)
    final: int | None = None
    recover_seconds: float | None = None
    bounds: list[str] = field(default_factory=list)
    redeliveries: float | None = None
    notes: list[str] = field(default_factory=list)
    #: The first line of what failed the phase, if anything did.
    failure: str | None = None

    @property
    def accepted(self) -> int:
        return len(self.ids)

    @property
    def lost(self) -> int | None:
        return None if self.final is None else self.accepted - self.final

    def wait(
        self,
        what: str,
        predicate: Callable[[], Any],
        *,
        since: float,
        bound: float,
        recovery: bool = False,
    ) -> float:
        """Poll ``predicate`` until ``bound`` seconds after ``since`` (a monotonic time) and note
        how long it took, or that the bound was missed (then the test fails, via wait_for).
        ``recovery``: this is the phase's "seconds to recover"."""
        remaining = max(bound - (time.monotonic() - since), 0.5)
        try:
            wait_for(predicate, timeout=remaining, interval=0.25, what=what)
        except BaseException:  # wait_for fails the test; the row says which bound
            self.bounds.append(f"{what}: MISSED (> {bound:.0f} s)")
            raise
        took = time.monotonic() - since
        self.bounds.append(f"{what}: {took:.1f} s (<= {bound:.0f} s)")
        if recovery:
            self.recover_seconds = took
        return took


@dataclass
class Recorder:
    rows: list[Row] = field(default_factory=list)

    @contextlib.contextmanager
    def phase(self, fault: str, stack: Stack, jobs: Jobs) -> Iterator[Row]:
        """A row for ``fault``. On leaving, the database says how many of its accepted jobs are
        final; a clean exit with any job not final fails the test (nothing may be lost)."""
        row = Row(fault)
        self.rows.append(row)
        before = stack.worker_metric(*REDELIVERIES)
        try:
            yield row
        except BaseException as exc:
            row.failure = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
            raise
        finally:
            with contextlib.suppress(Exception):  # a database that is down: final stays unknown
                row.final = jobs.count(row.ids, FINAL)
            row.redeliveries = counter_delta(before, stack.worker_metric(*REDELIVERIES))
        assert row.lost == 0, f"{fault}: {row.lost} of {row.accepted} accepted jobs not final"

    def table(self) -> list[str]:
        lines = [
            "| fault | jobs accepted | jobs final | jobs lost | seconds to recover "
            "| reconciler re-sends | bounds and notes | result |",
            "|---|---:|---:|---:|---:|---:|---|---|",
        ]
        for row in self.rows:
            cells = [
                row.fault,
                str(row.accepted),
                _shown(row.final),
                _shown(row.lost),
                _shown(row.recover_seconds, "{:.1f}"),
                _shown(row.redeliveries, "{:.0f}"),
                "; ".join(row.bounds + row.notes) or "-",
                "ok" if row.failure is None and row.lost == 0 else f"FAILED {row.failure or ''}",
            ]
            lines.append("| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |")
        return lines


def _shown(value: float | None, fmt: str = "{}") -> str:
    return "?" if value is None else fmt.format(value)


def counter_delta(
    before: dict[tuple[str, int], float] | None, after: dict[tuple[str, int], float] | None
) -> float | None:
    """How much a per-worker counter grew; a restarted worker (a new incarnation) counts from 0."""
    if after is None:
        return None
    before = before or {}
    return sum(value - before.get(key, 0.0) for key, value in after.items())
