"""Phase 1, load: 1000 jobs from 32 concurrent clients, every one accepted and every one run."""

from __future__ import annotations

import time

from tests.chaos.load import CLIENTS, Jobs, Load, specs, summary
from tests.chaos.recorder import Recorder
from tests.chaos.stack import Stack

LOAD_JOBS = 1000
#: Seconds the whole batch may take to be processed once accepted (measured: see the report).
DRAIN_BOUND = 180


def test_load_every_job_accepted_and_succeeded(
    stack: Stack, load: Load, jobs: Jobs, recorder: Recorder
) -> None:
    with recorder.phase(f"load: {LOAD_JOBS} jobs, {CLIENTS} clients", stack, jobs) as row:
        start = time.monotonic()
        batch = load.submit(specs("load", LOAD_JOBS))
        submitted = time.monotonic() - start
        row.ids = batch.accepted
        row.notes.append(f"all answered in {submitted:.1f} s ({LOAD_JOBS / submitted:.0f}/s)")
        unexpected = batch.unexpected(allowed=[202])
        assert not unexpected, f"every POST must be answered 202: {summary(unexpected)}"
        assert len(row.ids) == LOAD_JOBS
        row.wait(
            "all succeeded",
            lambda: jobs.all_in(row.ids, ["succeeded"]),
            since=start,
            bound=DRAIN_BOUND,
            recovery=True,
        )
