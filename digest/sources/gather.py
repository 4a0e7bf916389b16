"""Gather every enabled source concurrently; a broken source is a warning, never a failed run.

Per source, the stored fetch state decides what happens: a source that answered 410 is
'gone' and not fetched; one waiting out a Retry-After or a backoff is 'skipped' until its
``next_attempt_at``; any other is fetched from its ``fetch_url`` (where a permanent redirect
moved it) or its configured url, with the stored validators, so an unchanged feed costs a 304.

A source has ``gather.timeout_seconds`` in all, its redirect hops and a page source's
article pages included (``fetch.Deadline``); one still going then is cut off and fails.

That state was learnt under the source's settings: when any of them changes (a fixed
``links`` selector, not only the url), it is forgotten and the source is tried at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial

import httpx

from digest.config import Config, SourceConfig
from digest.errors import SourceError
from digest.records import FeedItem
from digest.sources import page as page_source
from digest.sources import sitemap as sitemap_source
from digest.sources.batch import BatchWriter
from digest.sources.fetch import Deadline, Fetched, Fetcher, HostPolicy, HttpStatusError, Limits
from digest.sources.parse import parse_feed, within_limit
from digest.sources.parsers import POOL_THRESHOLD, ParserPool, parser_pool
from digest.sources.site import Site
from digest.store import Store, utcnow
from digest.store.ingest import ItemsStored
from digest.store.store import FetchOutcome, SourceState

log = logging.getLogger("digest.sources")

HTML_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
_VALIDATOR_LIMIT = 500  # a longer ETag is not stored (sending a wrong one only costs a 200)


@dataclass
class SourceReport:
    """How one source did in one gather."""

    name: str
    status: str = "ok"  # ok | error | gone (answered 410) | skipped (waiting until next_attempt_at)
    new_items: int = 0
    items_seen: int = 0
    error: str = ""
    hint: str = ""
    notes: list[str] = field(default_factory=list)
    next_attempt_at: datetime | None = None  # when a failing or skipped source is tried next

    def counts(self) -> str:
        """What an ok fetch found, as `digest gather` and the console say it: "1 item, 1 new"."""
        return f"{self.items_seen} item{'' if self.items_seen == 1 else 's'}, {self.new_items} new"


def backoff(failures: int, interval_minutes: float, max_hours: float) -> timedelta:
    """How long a source failing ``failures`` times in a row waits before its next fetch.

    One failure is retried on the next run (it may be a blip); after that the pause doubles
    each time, interval * 2^(failures-1), up to ``max_hours``.
    """
    if failures < 2:
        return timedelta(0)
    doubled = timedelta(minutes=interval_minutes) * 2 ** min(failures - 1, 30)
    return min(doubled, timedelta(hours=max_hours))


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
    now = utcnow()
    ended = []
    for row in store.source_states().values():
        due = row.next_attempt_at is None or row.next_attempt_at <= now
        if row.name in enabled and (row.status == "gone" or not due):
            store.update_source(row.id, next_attempt_at=None, status="active")
            ended.append(row.name)
    return ended


def fetcher_for(config: Config, client: httpx.AsyncClient, hosts: HostPolicy | None) -> Fetcher:
    """The polite fetcher of one gather, with the caps from the config's [gather] table."""
    g = config.gather
    limits = Limits(int(g.max_body_mb * 1024 * 1024), g.max_redirects, g.timeout_seconds)
    hosts = hosts or HostPolicy(g.per_host_concurrency, g.per_host_delay_seconds)
    return Fetcher(client, limits, hosts, g.concurrency, config.base_dir)


async def gather(
    config: Config, store: Store, client: httpx.AsyncClient, hosts: HostPolicy | None = None
) -> list[SourceReport]:
    """Fetch, parse and store every enabled source; returns one report per source.

    ``hosts`` overrides the per-host politeness from the config (tests pass a zero delay).
    """
    sources = [s for s in config.sources if s.enabled]
    ids = store.sync_sources([(s.name, configured_as(s)) for s in config.sources])
    rows = store.source_states()  # one query, not one per source
    fetcher = fetcher_for(config, client, hosts)
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
    now = utcnow()
    if row.status == "gone":
        return _gone(report, row, source.url)
    if row.next_attempt_at is not None and row.next_attempt_at > now:
        return _skipped(report, row, row.next_attempt_at)
    url = row.fetch_url or source.url
    # gather.timeout_seconds is the time of the source, its redirects and article pages.
    deadline = Deadline(config.gather.timeout_seconds)
    try:
        fetched = await fetcher.get(
            source.name, url, etag=row.etag, last_modified=row.last_modified, deadline=deadline
        )
        if fetched.status == 304:
            report.items_seen = row.items_seen
            report.notes.append("not modified since the last fetch (HTTP 304)")
            unchanged = FetchOutcome(
                source_id, (), {"next_attempt_at": None}, None, row.items_seen, unchanged=True
            )
            await _save(writer, source, unchanged, report)
            return report
        listed: set[str] = set()
        items, notes = await _read(
            config, store, fetcher, source, source_id, url, fetched, deadline, pool, listed
        )
    except SourceError as exc:
        report, outcome = _failed(config, report, row, source_id, exc, now)
        await _save(writer, source, outcome, report)
        return report
    if deadline.cut:
        return await _overran(
            config, writer, report, row, source, source_id, deadline, items, notes, now
        )
    report.items_seen = len(items)
    report.notes = notes
    for note in notes:
        log.info("source %r: %s", source.name, note)
    changes: dict[str, object] = {
        "next_attempt_at": None,
        "etag": _validator(fetched.headers, "etag"),
        "last_modified": _validator(fetched.headers, "last-modified"),
    }
    if fetched.moved_to and fetched.moved_to != row.fetch_url:
        changes["fetch_url"] = fetched.moved_to
        report.notes.append(f"moved permanently to {fetched.moved_to}; fetched from there now")
        log.info("source %r: moved permanently to %s", source.name, fetched.moved_to)
    outcome = FetchOutcome(
        source_id, items, changes, None, len(items), listed_urls=tuple(sorted(listed))
    )
    stored = await _save(writer, source, outcome, report)
    if stored is None:
        return report
    report.new_items = stored.new
    for update in stored.updated:
        log.info(
            "source %r: article %d changed in the feed (%s); now %r, was %r",
            source.name,
            update.article_id,
            ", ".join(update.changed),
            update.title,
            update.old_title,
        )
    if stored.updated:
        report.notes.append(f"{len(stored.updated)} stored items changed in the feed; updated")
    log.info(
        "source %r: %d items, %d new, %d updated",
        source.name,
        len(items),
        report.new_items,
        len(stored.updated),
    )
    return report


async def _save(
    writer: BatchWriter, source: SourceConfig, outcome: FetchOutcome, report: SourceReport
) -> ItemsStored | None:
    """Write one fetch's outcome; the database refusing it is this source's error, by name.

    Every path (new items, a 304, a failed fetch) saves through here, so a locked or full
    database costs each source its report line, never the whole gather. None when refused.
    """
    try:
        return await writer.save(outcome)
    except Exception as exc:
        count = len(outcome.items)
        what = f"its {count} items" if count else "its fetch state"
        problem = f"{what} could not be stored: {exc}"
        log.error("source %r: %s", source.name, problem)
        if report.status == "ok":
            report.status, report.error = "error", SourceError(source.name, problem).message
            report.hint = "see the log for the database's message; the next run tries again"
        else:  # the fetch failed first: that stays the error, this is a note beside it
            report.notes.append(problem)
        if count:  # the health columns, if the store takes that much
            with contextlib.suppress(Exception):
                await writer.save(FetchOutcome(outcome.source_id, (), {}, report.error, count))
        return None


def _failed(
    config: Config,
    report: SourceReport,
    row: SourceState,
    source_id: int,
    exc: SourceError,
    now: datetime,
) -> tuple[SourceReport, FetchOutcome]:
    """The failure's report and what to store: a 410 marks the source gone, others wait."""
    report.status, report.error, report.hint = "error", exc.message, exc.hint
    log.warning("%s (%s)", exc.message, exc.hint)
    status = exc.status if isinstance(exc, HttpStatusError) else None
    if status == 410:
        report.status = "gone"
        return report, FetchOutcome(source_id, (), {"status": "gone"}, exc.message)
    g = config.gather
    cap = timedelta(hours=g.backoff_max_hours)
    wait = backoff(row.consecutive_failures + 1, g.interval_minutes, g.backoff_max_hours)
    next_at = now + wait if wait else None
    if isinstance(exc, HttpStatusError) and status in (429, 503) and exc.retry_at:
        # A hostile Retry-After of ten years is held to the backoff cap.
        asked = min(exc.retry_at, now + cap)
        next_at = max(asked, next_at) if next_at else asked
    if next_at is not None and next_at > now:
        report.next_attempt_at = next_at
        report.notes.append(f"next try at {_when(next_at)}")
    return report, FetchOutcome(source_id, (), {"next_attempt_at": next_at}, exc.message)


async def _overran(
    config: Config,
    writer: BatchWriter,
    report: SourceReport,
    row: SourceState,
    source: SourceConfig,
    source_id: int,
    deadline: Deadline,
    items: list[FeedItem],
    notes: list[str],
    now: datetime,
) -> SourceReport:
    """A page source whose article pages outlasted its time: a failure that backs off like
    any other, the articles read in time stored (so they are not fetched again) and the
    listing's validators dropped, so the next run reads it again rather than take a 304."""
    cut = deadline.cut  # one per article page: a fetch cut off goes no further
    exc = SourceError(
        source.name,
        f"took longer than gather.timeout_seconds = {deadline.seconds:g} s: {cut} article "
        f"page{'s' if cut != 1 else ''} not read in time"
        + (f" ({len(items)} read and stored)" if items else ""),
        "the site is slow: the pages not read are tried on the next run; if it is always "
        "this slow, raise gather.timeout_seconds or lower the source's max_articles",
    )
    report.notes = notes
    report.items_seen = len(items)
    for note in notes:
        log.info("source %r: %s", source.name, note)
    report, outcome = _failed(config, report, row, source_id, exc, now)
    changes = {**outcome.changes, "etag": None, "last_modified": None}
    stored = await _save(writer, source, replace(outcome, items=items, changes=changes), report)
    if stored is not None:
        report.new_items = stored.new
    return report


def _gone(report: SourceReport, row: SourceState, configured: str) -> SourceReport:
    url = row.fetch_url or configured
    report.status = "gone"
    report.error = SourceError(
        report.name, f"gone: {url} answered HTTP 410 Gone; not fetched any more"
    ).message
    report.hint = "change the source's url to its new address, or remove the source"
    return report


def _skipped(report: SourceReport, row: SourceState, until: datetime) -> SourceReport:
    report.status = "skipped"
    report.next_attempt_at = until
    failures = row.consecutive_failures
    report.error = SourceError(
        report.name,
        f"not fetched until {_when(until)} ({failures} failure{'s' if failures != 1 else ''} "
        f"in a row; last: {row.last_error or 'none'})",
    ).message
    report.hint = (
        "digest tries it again by itself then; fix the cause in its settings (a changed "
        "setting is tried at once), or run `digest gather --force`"
    )
    report.notes.append(f"next try at {_when(until)}")
    return report


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


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _has_validators(row: SourceState | None) -> bool:
    """True when a conditional GET can answer 304 (the source was fetched before)."""
    return row is not None and bool(row.etag or row.last_modified)


def _validator(headers: dict[str, str], name: str) -> str | None:
    value = next((v for k, v in headers.items() if k.lower() == name), None)
    if not value or len(value) > _VALIDATOR_LIMIT:
        return None
    return value


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

    ``requested`` is the address asked for: when redirects ended elsewhere, the error names
    where. A page source's article pages share the source's ``deadline``; the links of its
    listing to articles stored before (not read again) are added to ``listed``.
    """
    base = fetched.url or source.url
    limit = config.gather.max_items_per_source
    summary_chars = config.gather.summary_chars

    async def fetch_article(url: str, site: Site) -> Fetched:
        return await fetcher.get(
            source.name, url, accept=HTML_ACCEPT, within=site, deadline=deadline
        )

    try:
        if source.kind == "page":

            def known(urls: list[str]) -> set[str]:
                found = store.listed_urls(source_id, urls)  # its own, not others'
                if listed is not None:
                    listed.update(found)
                return found

            items, notes = await page_source.read_page_source(
                source, fetched, base, fetch_article, known, summary_chars
            )
        elif source.kind == "sitemap":
            items, notes = await asyncio.to_thread(
                sitemap_source.parse_sitemap, source.name, fetched.body, base
            )
        elif pool is not None:
            job = partial(
                parse_feed, source.name, fetched.body, fetched.headers, limit, base, summary_chars
            )
            try:
                executor = await pool.executor()
                items, notes = await asyncio.get_running_loop().run_in_executor(executor, job)
            except BrokenProcessPool:  # a worker died (out of memory?): parse here instead
                log.warning("source %r: parser process failed; parsing in-process", source.name)
                items, notes = await asyncio.to_thread(job)
        else:
            items, notes = await asyncio.to_thread(
                parse_feed, source.name, fetched.body, fetched.headers, limit, base, summary_chars
            )
    except SourceError as exc:
        raise _after_redirect(exc, requested, fetched.url) from None
    except NotImplementedError as exc:
        raise SourceError(
            source.name,
            f"sources of kind {source.kind!r} cannot be read by this version: {exc}",
            "use the site's RSS or Atom feed instead (kind = 'feed')",
        ) from None
    except Exception as exc:  # a parser bug on one odd document must not stop the others
        log.exception("source %r: unexpected error while reading", source.name)
        raise SourceError(
            source.name,
            f"could not parse the {source.kind}: {type(exc).__name__}: {exc}",
            "this is a bug in digest; please report it with the source's address",
        ) from None
    items, cut = within_limit(items, limit)  # a feed's parser cut it already
    return items, notes + cut
