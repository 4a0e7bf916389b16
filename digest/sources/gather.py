"""Gather every enabled source concurrently; a broken source is a warning, never a failed run.

Per source, the stored fetch state decides what happens: a source that answered 410 is
'gone' and not fetched; one waiting out a Retry-After or a backoff is 'skipped' until its
``next_attempt_at``; any other is fetched from its ``fetch_url`` (where a permanent redirect
moved it) or its configured url, with the stored validators, so an unchanged feed costs a 304.

A source has ``gather.timeout_seconds`` in all, its redirect hops and a page source's
article pages included (``pacing.Deadline``); one still going then is cut off and fails.

That state was learnt under the source's settings: when any of them changes (a fixed
``links`` selector, not only the url), it is forgotten and the source is tried at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from concurrent.futures.process import BrokenProcessPool
from functools import partial

import httpx

from digest.clock import SYSTEM_CLOCK, Clock
from digest.config import Config, SourceConfig
from digest.errors import SourceError
from digest.records import FeedItem
from digest.sources import page as page_source
from digest.sources import sitemap as sitemap_source
from digest.sources.addresses import without_internal_pictures
from digest.sources.batch import BatchWriter
from digest.sources.fetch import Deadline, Fetched, Fetcher, HostPolicy, Limits
from digest.sources.outcomes import (
    SourceReport,
    backoff,
    failed,
    gone,
    overran,
    save,
    skipped,
    stored,
    unchanged,
)
from digest.sources.parse import kept_items, parse_feed
from digest.sources.parsers import POOL_THRESHOLD, ParserPool, parser_pool
from digest.sources.site import Site
from digest.states import SourceStatus
from digest.store import Store
from digest.store.store import SourceState

# Re-exported: the faces and tests import the report and the backoff from here.
__all__ = ["SourceReport", "backoff", "configured_as", "end_waits", "fetcher_for", "gather"]

log = logging.getLogger("digest.sources")

HTML_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"


def configured_as(source: SourceConfig) -> str:
    """What the store keeps as the source's configured url: the url, and for a source with
    reading settings of its own a fingerprint of them, as a fragment (never sent; the
    config's url is what is fetched).

    The store forgets a source's fetch state (backoff, validators, 'gone') when its url
    changes; with the fingerprint in it, so it does when a setting of how it is read
    changes: a fixed selector is tried on the next gather, and a 304 for the old one does
    not hide it. Settings of how it is ranked (weight, topics) keep the state, and a plain
    feed keeps its bare url, as stored before fingerprints.
    """
    reading = source.model_dump(mode="json", include=_READING)
    if reading == _PLAIN_FEED:
        return source.url
    settings = json.dumps(reading, sort_keys=True)
    return f"{source.url}#settings-{hashlib.sha256(settings.encode()).hexdigest()[:16]}"


# What decides how a source is fetched and read; a plain feed sets none of it.
_READING = {"kind", "links", "breaking", "max_articles"}
_PLAIN_FEED = {
    name: field.get_default(call_default_factory=True)
    for name, field in SourceConfig.model_fields.items()
    if name in _READING
}


def end_waits(config: Config, store: Store) -> list[str]:
    """Make every enabled source due now (`digest gather --force`): its backoff or
    Retry-After wait ends and a 'gone' mark is lifted; returns the names that waited.

    Its failures still count: failing again, it waits as long as it would have.
    """
    enabled = {s.name for s in config.sources if s.enabled}
    now = store.clock.now()
    ended = []
    for row in store.source_states().values():
        due = row.next_attempt_at is None or row.next_attempt_at <= now
        if row.name in enabled and (row.status == SourceStatus.GONE or not due):
            store.update_source(row.id, next_attempt_at=None, status=SourceStatus.ACTIVE)
            ended.append(row.name)
    return ended


def fetcher_for(
    config: Config,
    client: httpx.AsyncClient,
    hosts: HostPolicy | None,
    clock: Clock = SYSTEM_CLOCK,
) -> Fetcher:
    """The polite fetcher of one gather, with the caps from the config's [gather] table."""
    g = config.gather
    limits = Limits(int(g.max_body_mb * 1024 * 1024), g.max_redirects, g.timeout_seconds)
    hosts = hosts or HostPolicy(g.per_host_concurrency, g.per_host_delay_seconds, clock)
    return Fetcher(client, limits, hosts, g.concurrency, config.base_dir, clock)


async def gather(
    config: Config, store: Store, client: httpx.AsyncClient, hosts: HostPolicy | None = None
) -> list[SourceReport]:
    """Fetch, parse and store every enabled source; returns one report per source.

    ``hosts`` overrides the per-host politeness from the config (tests pass a zero delay).
    """
    sources = [s for s in config.sources if s.enabled]
    ids = store.sync_sources([(s.name, configured_as(s)) for s in config.sources])
    rows = store.source_states()  # one query, not one per source
    fetcher = fetcher_for(config, client, hosts, store.clock)
    writer = BatchWriter(store)
    fresh = sum(1 for s in sources if not _has_validators(rows.get(ids[s.name])))
    async with parser_pool(len(sources), eager=fresh >= POOL_THRESHOLD) as pool:
        return list(
            await asyncio.gather(
                *(
                    _gather_one(config, store, fetcher, s, ids[s.name], rows, pool, writer)
                    for s in sources
                )
            )
        )


async def _gather_one(
    config: Config,
    store: Store,
    fetcher: Fetcher,
    source: SourceConfig,
    source_id: int,
    rows: dict[int, SourceState],
    pool: ParserPool | None,
    writer: BatchWriter,
) -> SourceReport:
    report = SourceReport(source.name)
    row = rows.get(source_id)
    if row is None:  # sync_sources just made it; only a concurrent delete gets here
        row = SourceState(source_id, source.name, source.url)
    now = store.clock.now()
    if row.status == SourceStatus.GONE:
        return gone(report, row, source.url)
    if row.next_attempt_at is not None and row.next_attempt_at > now:
        return skipped(report, row, row.next_attempt_at)
    url = row.fetch_url or source.url
    # gather.timeout_seconds is the time of the source, its redirects and article pages.
    deadline = Deadline(config.gather.timeout_seconds)
    listed: set[str] = set()
    try:
        fetched = await fetcher.get(
            source.name,
            url,
            etag=row.etag,
            last_modified=row.last_modified,
            deadline=deadline,
            home=source.url,
        )
        if fetched.status == 304:
            return await unchanged(writer, source, row, report)
        items, notes = await _read(
            config, store, fetcher, source, source_id, url, fetched, deadline, pool, listed
        )
    except SourceError as exc:
        report, outcome = failed(config, report, row, source_id, exc, now)
        await save(writer, source, outcome, report)
        return report
    if deadline.cut:
        return await overran(
            config, writer, report, row, source, source_id, deadline, items, notes, now
        )
    return await stored(writer, source, row, fetched, (items, notes, listed), report)


def _after_redirect(exc: SourceError, requested: str, final: str) -> SourceError:
    """The reader's error, naming where redirects led when that is not the address asked
    for: a feed that now redirects to a login page is not "an HTML page at your url"."""
    if not final or final == requested or type(exc) is not SourceError:
        return exc  # (a subclass carries more, such as an HTTP status: left as it is)
    return SourceError(
        exc.source,
        f"{exc.reason} (at {final}, where {requested} now redirects)",
        "the feed now redirects there: if that is a login page, the feed needs "
        "authentication, which digest cannot give; if the feed moved, set url to its new "
        f"address; otherwise {exc.hint}",
    )


def _has_validators(row: SourceState | None) -> bool:
    """True when a conditional GET can answer 304 (the source was fetched before)."""
    return row is not None and bool(row.etag or row.last_modified)


async def _read(
    config: Config,
    store: Store,
    fetcher: Fetcher,
    source: SourceConfig,
    source_id: int,
    requested: str,
    fetched: Fetched,
    deadline: Deadline,
    pool: ParserPool | None = None,
    listed: set[str] | None = None,
) -> tuple[list[FeedItem], list[str]]:
    """The items of a fetched document, read as its kind says; any surprise is a SourceError.
    What gathering keeps of them is decided here (``parse.kept_items``): no placeholder or
    test item, at most max_items_per_source, with a note naming each left out.

    ``requested`` is the address asked for: when redirects ended elsewhere, the error names
    where. A page source's article pages share the source's ``deadline``; the links of its
    listing to articles stored before (not read again) are added to ``listed``.
    """
    limit = config.gather.max_items_per_source
    try:
        if source.kind == "page":
            items, notes = await _read_page(
                config, store, fetcher, source, source_id, fetched, deadline, listed
            )
        elif source.kind == "sitemap":
            items, notes = await asyncio.to_thread(
                sitemap_source.parse_sitemap,
                source.name,
                fetched.body,
                fetched.url or source.url,
                source.language,
            )
        else:
            items, notes = await _parse(config, source, fetched, pool)
    except SourceError as exc:
        said = _after_redirect(exc, requested, fetched.url)
        if said is exc:
            raise  # as it is, with its own cause
        raise said from exc
    except NotImplementedError as exc:
        raise SourceError(
            source.name,
            f"sources of kind {source.kind!r} cannot be read by this version: {exc}",
            "use the site's RSS or Atom feed instead (kind = 'feed')",
        ) from exc
    except Exception as exc:  # a parser bug on one odd document must not stop the others
        log.exception("source %r: unexpected error while reading", source.name)
        raise SourceError(
            source.name,
            f"could not parse the {source.kind}: {type(exc).__name__}: {exc}",
            "this is a bug in digest; please report it with the source's address",
        ) from exc
    items, left_out = kept_items(items, limit)  # for every kind of source, here
    # The look-up of the source's own address, should a picture ask, is the source's time
    # too: given what is left of it, not gather.timeout_seconds afresh.
    items, pictures = await without_internal_pictures(items, source.url, deadline.left())
    return items, notes + left_out + pictures


async def _read_page(
    config: Config,
    store: Store,
    fetcher: Fetcher,
    source: SourceConfig,
    source_id: int,
    fetched: Fetched,
    deadline: Deadline,
    listed: set[str] | None,
) -> tuple[list[FeedItem], list[str]]:
    """A page source: its listing's article links, each article fetched within ``deadline``."""

    async def fetch_article(url: str, site: Site) -> Fetched:
        # Held to the source's own network, as a redirect is: a sibling host of the site
        # that this machine's DNS puts on an internal network (split-horizon DNS) is not
        # the listing's to send the gatherer to, nor its pages' text to every reader; nor
        # its own host, once its name answers another address. The source's network is
        # the one its listing was fetched from (no look-up of it per article).
        return await fetcher.get(
            source.name,
            url,
            accept=HTML_ACCEPT,
            within=site,
            deadline=deadline,
            home=source.url,
            origin=fetched.origin,
            again=True,
        )

    def known(urls: list[str]) -> set[str]:
        found = store.listed_urls(source_id, urls)  # its own, not others'
        if listed is not None:
            listed.update(found)
        return found

    base = fetched.url or source.url
    return await page_source.read_page_source(
        source, fetched, base, fetch_article, known, config.gather.summary_chars
    )


async def _parse(
    config: Config, source: SourceConfig, fetched: Fetched, pool: ParserPool | None
) -> tuple[list[FeedItem], list[str]]:
    """A feed parsed off the event loop: in the parser processes when there are any."""
    g = config.gather
    base = fetched.url or source.url
    job = partial(
        parse_feed,
        source.name,
        fetched.body,
        fetched.headers,
        g.max_items_per_source,
        base,
        g.summary_chars,
        source.language,
    )
    if pool is None:
        return await asyncio.to_thread(job)
    try:
        executor = await pool.executor()
        return await asyncio.get_running_loop().run_in_executor(executor, job)
    except BrokenProcessPool:  # a worker died (out of memory?): parse here instead
        log.warning("source %r: parser process failed; parsing in-process", source.name)
        return await asyncio.to_thread(job)
