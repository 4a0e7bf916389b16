"""The composition root: builds the database, HTTP client and sender from config, closes them.

CLI commands and the scheduler are thin entry points over ``App``; nothing else constructs
an engine, a client or a transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy.engine import Engine

from digest import __version__
from digest.clock import SYSTEM_CLOCK, Clock
from digest.config import Config
from digest.deliver import Sender, build_sender
from digest.sources.network import ssl_context
from digest.sources.transport import gather_transport, skip_cookieless_responses
from digest.store import SendJournal, Store, existing_engine, open_engine, resolve_url, upgrade

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine to completion on a fresh event loop: uvloop's, where installed.

    Every entry point (the CLI, the daemon) runs its work through here. A gather of
    hundreds of sources spends much of its time in the event loop's own machinery, which
    uvloop does in C (bench/gather.py: ~15% less CPU).
    """
    try:
        import uvloop
    except ImportError:  # a platform without uvloop (Windows): the standard loop
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


@dataclass
class App:
    """One configured digest service: its config, database and store."""

    config: Config
    engine: Engine
    store: Store

    @classmethod
    def open(cls, config: Config, migrate: bool = True, clock: Clock = SYSTEM_CLOCK) -> App:
        """Open the database and bring its schema up to date (migrations run on every start).

        ``clock`` is the one every stage reads the time from (a test passes a set one).
        """
        engine = open_engine(resolve_url(config.service.database_url, config.base_dir))
        if migrate:
            upgrade(engine)
        return cls._over(config, engine, clock)

    @classmethod
    def existing(cls, config: Config, clock: Clock = SYSTEM_CLOCK) -> App | None:
        """The App over a database that is there already at this digest's schema, which
        nothing makes or migrates (``existing_engine``); None for one not made yet, out of
        reach or at an older migration. For a command that only reads: `digest check`."""
        engine = existing_engine(resolve_url(config.service.database_url, config.base_dir))
        return None if engine is None else cls._over(config, engine, clock)

    @staticmethod
    def database_only(url: str, base_dir: Path, clock: Clock, journal: Path | None) -> Store | None:
        """The store over the database at ``url`` (relative to ``base_dir``), there already
        at this digest's schema (``existing``), without a config: for `digest status` while
        the config file is invalid. None when there is none; the caller disposes its engine.
        ``journal``: the file of sends the database failed to record, if known."""
        engine = existing_engine(resolve_url(url, base_dir))
        if engine is None:
            return None
        return Store(engine, clock, SendJournal(journal) if journal else None)

    @classmethod
    def _over(cls, config: Config, engine: Engine, clock: Clock) -> App:
        journal = SendJournal(config.resolve_path(config.delivery.unrecorded_file))
        return cls(config, engine, Store(engine, clock, journal))

    @property
    def clock(self) -> Clock:
        """The service's clock: the store's, so what is decided and what is stored agree."""
        return self.store.clock

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    @asynccontextmanager
    async def http(self) -> AsyncIterator[httpx.AsyncClient]:
        """One shared HTTP client for a gather: timeouts and a real User-Agent.

        Redirects are not followed here: the gatherer follows them itself, to count them,
        refuse any scheme but http(s) and learn whether a feed moved for good.
        """
        g = self.config.gather
        timeout = httpx.Timeout(g.timeout_seconds, connect=min(10.0, g.timeout_seconds))
        headers = {"User-Agent": f"digest/{__version__} (+{self.config.service.base_url})"}
        # The gatherer bounds requests in flight overall and per host itself; each host's
        # own small pool keeps the connections its next feeds reuse (see PoolPerOriginTransport).
        per_origin = httpx.Limits(
            max_connections=g.concurrency, max_keepalive_connections=g.per_host_concurrency
        )
        # None behind a proxy: httpx's own transport, which honours the proxy variables.
        transport = gather_transport(per_origin, max_pools=g.concurrency)
        client = httpx.AsyncClient(
            timeout=timeout,
            headers=headers,
            follow_redirects=False,
            transport=transport,
            verify=ssl_context(),  # used by httpx's own transport only
            limits=httpx.Limits(max_connections=g.concurrency),  # likewise
        )
        async with skip_cookieless_responses(client):
            yield client

    @asynccontextmanager
    async def sender(self) -> AsyncIterator[Sender]:
        """The configured transport, closed after use."""
        sender = build_sender(self.config)
        try:
            yield sender
        finally:
            await sender.aclose()
