"""Group commit: callers who arrive while a write is in flight share the next one.

The first caller writes at once, alone; everyone arriving during its round trip waits and then
goes out together as one statement and one commit. No timer: an idle service adds no latency,
a busy one batches as much as its load offers. The fastest PostgreSQL queues batch the same way.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

#: Items per write at most: bounds a statement's size and the wait of the last one in it.
MAX_BATCH = 256


@dataclass
class _Slot[T, R]:
    item: T
    done: bool = False
    result: R | None = None
    error: BaseException | None = None


@dataclass
class GroupCommit[T, R]:
    """For threads (and gevent's greenlets): ``call(item)`` blocks until the batch holding
    ``item`` is written, and returns its own result. ``write`` maps a batch to one result per
    item, in order; its exception reaches every caller of that batch."""

    write: Callable[[list[T]], Sequence[R]]
    max_batch: int = MAX_BATCH
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _pending: list[_Slot[T, R]] = field(default_factory=list)
    _writing: bool = False

    def __call__(self, item: T) -> R:
        slot: _Slot[T, R] = _Slot(item)
        with self._lock:
            self._pending.append(slot)
            while not slot.done:
                if self._writing:
                    self._lock.wait()
                    continue
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                self._writing = True
                self._lock.release()
                try:
                    _settle(batch, self.write)
                finally:
                    self._lock.acquire()
                    self._writing = False
                    self._lock.notify_all()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]


def _settle[T, R](batch: list[_Slot[T, R]], write: Callable[[list[T]], Sequence[R]]) -> None:
    try:
        results = write([slot.item for slot in batch])
    except BaseException as exc:  # every caller of the batch learns why, the writer included
        for slot in batch:
            slot.error, slot.done = exc, True
        return
    for slot, result in zip(batch, results, strict=True):
        slot.result, slot.done = result, True


class AsyncGroupCommit[T, R]:
    """The same for coroutines on one event loop, with up to ``writers`` writes in flight: the
    round trips of one batch overlap the next one's, and the writes run in ``executor`` (as many
    threads as writers) so the loop stays free for other requests meanwhile."""

    def __init__(
        self,
        write: Callable[[list[T]], Sequence[R]],
        executor: Executor,
        *,
        writers: int = 1,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.write = write
        self.executor = executor
        self.writers = writers
        self.max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._active: set[asyncio.Task[None]] = set()

    async def __call__(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if len(self._active) < self.writers:
            # A task of its own: a request that goes away does not cancel its batch's write.
            self._active.add(loop.create_task(self._write_all()))
        return await future

    async def _write_all(self) -> None:
        try:
            await self._write_pending()
        finally:
            # In the same step as the last look at _pending (no await between): a request that
            # comes after it sees one writer fewer and starts its own.
            self._active.discard(asyncio.current_task())

    async def _write_pending(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            items = [item for item, _ in batch]
            try:
                results = await loop.run_in_executor(self.executor, self.write, items)
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
