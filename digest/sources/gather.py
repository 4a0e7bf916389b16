"""Gather every enabled source concurrently; a broken source is a warning, never a failed run."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import httpx

from digest.config import Config, SourceConfig
from digest.errors import SourceError
from digest.records import FeedItem
from digest.sources.fetch import Fetched, fetch
from digest.sources.parse import parse_feed
from digest.store import Store

log = logging.getLogger("digest.sources")


@dataclass
class SourceReport:
    """How one source did in one gather."""

    name: str
    status: str = "ok"  # ok | error
    new_items: int = 0
    items_seen: int = 0
    error: str = ""
    hint: str = ""
    notes: list[str] = field(default_factory=list)


async def gather(config: Config, store: Store, client: httpx.AsyncClient) -> list[SourceReport]:
    """Fetch, parse and store every enabled source; returns one report per source."""
    sources = [s for s in config.sources if s.enabled]
    ids = store.sync_sources([(s.name, s.url) for s in config.sources])
    limit = asyncio.Semaphore(config.gather.concurrency)

    async def one(source: SourceConfig) -> SourceReport:
        async with limit:
            return await _gather_one(config, store, client, source, ids[source.name])

    return list(await asyncio.gather(*(one(s) for s in sources)))


async def _gather_one(
    config: Config, store: Store, client: httpx.AsyncClient, source: SourceConfig, source_id: int
) -> SourceReport:
    report = SourceReport(source.name)
    timeout = config.gather.timeout_seconds
    try:
        try:
            # httpx's timeout bounds each read; this bounds the whole download, so a server
            # that trickles a byte at a time cannot hold the gather for ever.
            async with asyncio.timeout(timeout):
                fetched = await fetch(client, source.name, source.url, config.base_dir)
        except TimeoutError:
            raise SourceError(
                source.name,
                f"timed out fetching {source.url} (no complete answer in {timeout:g} s)",
                "the server is slow or down; raise gather.timeout_seconds if it is always slow",
            ) from None
        items, notes = await asyncio.to_thread(_parse, config, source, fetched)
    except SourceError as exc:
        report.status, report.error, report.hint = "error", exc.message, exc.hint
        log.warning("%s (%s)", exc.message, exc.hint)
        store.record_fetch(source_id, error=exc.message)
        return report
    report.items_seen = len(items)
    report.notes = notes
    for note in notes:
        log.info("source %r: %s", source.name, note)
    report.new_items = store.add_articles(source_id, items)
    store.record_fetch(source_id, items_seen=len(items))
    log.info("source %r: %d items, %d new", source.name, len(items), report.new_items)
    return report


def _parse(
    config: Config, source: SourceConfig, fetched: Fetched
) -> tuple[list[FeedItem], list[str]]:
    """parse_feed, with any surprise inside the parser turned into this source's error."""
    try:
        return parse_feed(
            source.name,
            fetched.body,
            fetched.headers,
            config.gather.max_items_per_source,
            base_url=fetched.url or source.url,
        )
    except SourceError:
        raise
    except Exception as exc:  # a parser bug on one odd feed must not stop the others
        log.exception("source %r: unexpected error while parsing", source.name)
        raise SourceError(
            source.name,
            f"could not parse the feed: {type(exc).__name__}: {exc}",
            "this is a bug in digest; please report it with the feed's address",
        ) from None
