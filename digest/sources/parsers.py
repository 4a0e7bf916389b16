"""Worker processes that parse feeds while the gather's event loop keeps fetching.

Parsing is CPU-bound; a big gather parses in processes (a fork server with the parser
preloaded), a small one in a thread, and a gather of unchanged feeds never starts them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import asynccontextmanager, contextmanager

POOL_THRESHOLD = 40  # sources in one gather before parsing moves to worker processes


class ParserPool:
    """Worker processes for parsing, started once, on first need or ahead of time.

    Parsing is CPU-bound Python: threads share one core, processes use them all. The pool
    comes from a fork server (a clean process that preloaded the parser), so forking never
    copies this process's threads or locks. It starts in a thread; readers await it.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._starting: asyncio.Future[Executor] | None = None

    def start(self) -> None:
        """Begin starting the workers (no-op when already started)."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(asyncio.to_thread(self._start))

    async def executor(self) -> Executor:
        """The running pool, started now if nothing asked for it before."""
        self.start()
        assert self._starting is not None
        return await self._starting

    def _start(self) -> Executor:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["digest.sources.parse"])
        pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
        with _STARTING, _main_script_hidden():  # these first submits spawn every worker
            futures = [pool.submit(os.getpid) for _ in range(self.workers)]
        for future in futures:
            future.result()
        return pool

    async def close(self) -> None:
        """Stop the workers, if they were ever started."""
        if self._starting is not None:
            pool = await self._starting
            await asyncio.to_thread(pool.shutdown, True, cancel_futures=True)


# Pools start in threads (the daemon's jobs run in threads of their own): one at a time,
# so one's restoring ``__main__.__file__`` cannot land while another's workers spawn.
_STARTING = threading.Lock()


@contextmanager
def _main_script_hidden() -> Iterator[None]:
    """Start processes that do not run this program's main script again.

    multiprocessing re-runs ``__main__``'s file in every new process (for functions defined
    there). The parser's functions live in digest.sources.parse, and the script is the
    `digest` command, or bench/gather.py, whose imports (the CLI, the store, the config)
    cost each worker ~1 s of CPU per gather while the gather needs that CPU.
    """
    main = sys.modules["__main__"]
    path = main.__dict__.pop("__file__", None)
    try:
        yield
    finally:
        if path is not None:
            main.__file__ = path


@asynccontextmanager
async def parser_pool(sources: int, eager: bool) -> AsyncIterator[ParserPool | None]:
    """A ParserPool when there are enough sources to repay it, else None (parse in a thread).

    ``eager`` starts it at once, while the first answers are on their way (sources never
    fetched before will need it); otherwise it starts with the first document to parse, so
    a gather of unchanged feeds (all 304) never starts it.
    """
    workers = min(os.cpu_count() or 1, 4)
    if sources < POOL_THRESHOLD or workers < 2:
        yield None
        return
    pool = ParserPool(workers)
    if eager:
        pool.start()
    try:
        yield pool
    finally:
        await pool.close()
