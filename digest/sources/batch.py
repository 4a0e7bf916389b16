"""Fetch outcomes written in batches: a few commits for hundreds of sources.

A gather of 500 sources would otherwise commit 500 times; SQLite has one writer, so the
writes queue here and go out together, and a batch that fails is written again one source
at a time, so one source's bad data costs only that source.
"""

from __future__ import annotations

import asyncio
import logging

from digest.store import Store
from digest.store.ingest import ItemsStored
from digest.store.store import FetchOutcome

log = logging.getLogger("digest.sources")


class BatchWriter:
    """Saves fetch outcomes in batches from a thread: a few commits for hundreds of sources.

    ``save`` waits until its batch is written and returns what it stored (new articles,
    updated ones), so a report is never printed for something not yet stored. Batches are
    written one at a time (SQLite has one writer).
    """

    def __init__(self, store: Store, size: int = 64, wait: float = 0.02) -> None:
        self.store, self.size, self.wait = store, size, wait
        self._pending: list[tuple[FetchOutcome, asyncio.Future[ItemsStored]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def save(self, outcome: FetchOutcome) -> ItemsStored:
        """Queue one outcome; return what it stored once its batch is committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ItemsStored] = loop.create_future()
        self._pending.append((outcome, future))
        if len(self._pending) >= self.size:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.wait, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.ensure_future(self._write(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _write(self, batch: list[tuple[FetchOutcome, asyncio.Future[ItemsStored]]]) -> None:
        async with self._lock:
            try:
                results = await asyncio.to_thread(self.store.save_fetches, [o for o, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exc)
                    return
                # One source's outcome failed the batch's transaction: write them one at a
                # time, so only that source fails (by name, in its report) and the others'
                # articles are stored.
                log.warning(
                    "a batch of %d fetches failed (%s); writing each alone", len(batch), exc
                )
                for one in batch:
                    try:
                        alone = await asyncio.to_thread(self.store.save_fetches, [one[0]])
                    except Exception as failure:
                        _settle(one[1], failure)
                    else:
                        _settle(one[1], alone[0])
                return
        for (_, future), stored in zip(batch, results, strict=True):
            _settle(future, stored)


def _settle(future: asyncio.Future[ItemsStored], result: ItemsStored | BaseException) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
