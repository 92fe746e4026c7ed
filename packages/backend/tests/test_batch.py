"""Group commit: who arrives during a write shares the next one; errors reach the whole batch."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from boards.jobs.batch import AsyncGroupCommit, GroupCommit


def test_callers_arriving_during_a_write_share_the_next_one() -> None:
    first_writing, release = threading.Event(), threading.Event()
    batches: list[list[int]] = []

    def write(items: list[int]) -> list[int]:
        batches.append(items)
        if len(batches) == 1:
            first_writing.set()
            assert release.wait(5)
        return [item * 10 for item in items]

    commit: GroupCommit[int, int] = GroupCommit(write)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(commit, 0)
        assert first_writing.wait(5)
        rest = [pool.submit(commit, n) for n in range(1, 6)]
        deadline = time.monotonic() + 5
        while len(commit._pending) < 5:  # all five queued behind the first write
            assert time.monotonic() < deadline, commit._pending
            threading.Event().wait(0.001)
        release.set()
        assert first.result(5) == 0
        assert [f.result(5) for f in rest] == [10, 20, 30, 40, 50]
    assert batches[0] == [0]
    assert sorted(batches[1]) == [1, 2, 3, 4, 5]  # one write for all that waited


def test_a_lone_caller_writes_at_once_and_errors_reach_it() -> None:
    def write(items: list[str]) -> list[str]:
        if "bad" in items:
            raise ValueError("no")
        return items

    commit: GroupCommit[str, str] = GroupCommit(write)
    assert commit("a") == "a"
    with pytest.raises(ValueError, match="no"):
        commit("bad")
    assert commit("b") == "b"  # the next write goes on


def test_coroutines_share_writes_and_a_failed_batch_fails_only_its_own() -> None:
    batches: list[list[int]] = []

    def write(items: list[int]) -> list[int]:
        batches.append(items)
        if -1 in items:
            raise RuntimeError("down")
        return [item + 1 for item in items]

    async def main() -> list[object]:
        with ThreadPoolExecutor(1) as executor:
            commit: AsyncGroupCommit[int, int] = AsyncGroupCommit(write, executor)
            first = await asyncio.gather(*(commit(n) for n in range(8)))
            failed = await asyncio.gather(commit(-1), return_exceptions=True)
            after = await commit(41)
        return [first, failed, after]

    first, failed, after = asyncio.run(main())
    assert first == [1, 2, 3, 4, 5, 6, 7, 8]
    assert batches[0] == list(range(8))  # all arrived before the writer's first turn: one write
    assert isinstance(failed[0], RuntimeError)  # type: ignore[index]
    assert after == 42


def test_a_caller_right_after_a_write_ended_gets_a_writer() -> None:
    """The writer that found nothing more to write is gone before the next caller looks."""

    async def main() -> list[int]:
        with ThreadPoolExecutor(2) as executor:
            commit: AsyncGroupCommit[int, int] = AsyncGroupCommit(
                lambda items: items, executor, writers=1
            )
            answers = []
            for n in range(20):  # one at a time: each call comes as the last write ends
                answers.append(await asyncio.wait_for(commit(n), 5))
        return answers

    assert asyncio.run(main()) == list(range(20))
