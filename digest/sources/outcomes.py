"""What one source's gather comes to: its report, the outcome stored for it, and the wait
after a failure (a backoff, a Retry-After, or 'gone' for good).

Every path (new items, a 304, a failed fetch, a source that ran out of time) ends here, so a
source's report and its stored state are written the same way whichever path it took.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy.exc import DBAPIError

from digest.clock import utc_time
from digest.config import Config, SourceConfig
from digest.errors import SourceError
from digest.logs import IN_REPORT
from digest.records import FeedItem
from digest.sources.batch import BatchWriter
from digest.sources.fetch import Deadline, Fetched, HttpStatusError
from digest.states import FetchStatus, SourceStatus
from digest.store.ingest import ItemsStored
from digest.store.store import FetchOutcome, SourceState
from digest.store.trouble import (
    SCHEMA_HINT,
    database_error,
    database_trouble,
    database_words,
    schema_behind,
)

log = logging.getLogger("digest.sources")

# The note of a 304: routine, so `digest gather` says it on the source's line.
NOT_MODIFIED = "not modified since the last fetch (HTTP 304)"
_VALIDATOR_LIMIT = 500  # a longer ETag is not stored (sending a wrong one only costs a 200)


@dataclass
class SourceReport:
    """How one source did in one gather."""

    name: str
    status: str = FetchStatus.OK  # a FetchStatus
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


async def save(
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
        # The database's own trouble (full, read-only, locked) in its words and remedy,
        # not SQLAlchemy's statement and link; anything else (a bug, a schema behind the
        # code) as it came, with its traceback in the log.
        said = (
            database_error(exc) if isinstance(exc, DBAPIError) and database_trouble(exc) else None
        )
        behind = schema_behind(exc)
        cause = said.message if said else database_words(exc) if behind else exc
        problem = f"{what} could not be stored: {cause}"
        log.error("source %r: %s", source.name, problem, exc_info=None if said else exc)
        if report.status == FetchStatus.OK:
            report.status = FetchStatus.ERROR
            report.error = SourceError(source.name, problem).message
            report.hint = (
                f"{said.hint}; the next run tries again"
                if said
                else SCHEMA_HINT
                if behind
                else "see the log for the database's message; the next run tries again"
            )
        else:  # the fetch failed first: that stays the error, this is a note beside it
            report.notes.append(problem)
        if count:  # the health columns, if the store takes that much
            with contextlib.suppress(Exception):
                await writer.save(
                    FetchOutcome(outcome.source_id, (), {}, report.error, count, hint=report.hint)
                )
        return None


def failed(
    config: Config,
    report: SourceReport,
    row: SourceState,
    source_id: int,
    exc: SourceError,
    now: datetime,
) -> tuple[SourceReport, FetchOutcome]:
    """The failure's report and what to store: a 410 marks the source gone, others wait."""
    report.status, report.error, report.hint = FetchStatus.ERROR, exc.message, exc.hint
    # At -vv with the traceback and its cause (the network's or the parser's own error).
    trace = exc if log.isEnabledFor(logging.DEBUG) else None
    # `digest gather` prints it in its table: there it is not logged a second time.
    log.warning("%s (%s)", exc.message, exc.hint, exc_info=trace, extra=IN_REPORT)
    status = exc.status if isinstance(exc, HttpStatusError) else None
    if status == 410:
        report.status = FetchStatus.GONE
        return report, FetchOutcome(
            source_id, (), {"status": SourceStatus.GONE}, exc.message, hint=exc.hint
        )
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
        report.notes.append(f"next try at {utc_time(next_at)}")
    return report, FetchOutcome(
        source_id, (), {"next_attempt_at": next_at}, exc.message, hint=exc.hint
    )


async def overran(
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
    report, outcome = failed(config, report, row, source_id, exc, now)
    changes = {**outcome.changes, "etag": None, "last_modified": None}
    stored = await save(writer, source, replace(outcome, items=items, changes=changes), report)
    if stored is not None:
        report.new_items = stored.new
    return report


def gone(report: SourceReport, row: SourceState, configured: str) -> SourceReport:
    url = row.fetch_url or configured
    report.status = FetchStatus.GONE
    report.error = SourceError(
        report.name, f"gone: {url} answered HTTP 410 Gone; not fetched any more"
    ).message
    report.hint = "change the source's url to its new address, or remove the source"
    return report


def skipped(report: SourceReport, row: SourceState, until: datetime) -> SourceReport:
    report.status = FetchStatus.SKIPPED
    report.next_attempt_at = until
    failures = row.consecutive_failures
    report.error = SourceError(
        report.name,
        f"not fetched until {utc_time(until)} ({failures} failure{'s' if failures != 1 else ''} "
        f"in a row; last: {row.last_error or 'none'})",
    ).message
    report.hint = (
        "digest tries it again by itself then; fix the cause in its settings (a changed "
        "setting is tried at once), or run `digest gather --force`"
    )
    report.notes.append(f"next try at {utc_time(until)}")
    return report


def _validator(fetched: Fetched, name: str) -> str | None:
    """The validator header ``name`` to store for the next conditional GET; None when absent
    or too long to keep."""
    value = fetched.header(name)
    if not value or len(value) > _VALIDATOR_LIMIT:
        return None
    return value


async def unchanged(
    writer: BatchWriter, source: SourceConfig, row: SourceState, report: SourceReport
) -> SourceReport:
    """A 304: the feed is as it was; its items are counted as last time and nothing is read."""
    report.items_seen = row.items_seen
    report.notes.append(NOT_MODIFIED)
    outcome = FetchOutcome(
        row.id, (), {"next_attempt_at": None}, None, row.items_seen, unchanged=True
    )
    await save(writer, source, outcome, report)
    return report


async def stored(
    writer: BatchWriter,
    source: SourceConfig,
    row: SourceState,
    fetched: Fetched,
    read: tuple[list[FeedItem], list[str], set[str]],
    report: SourceReport,
) -> SourceReport:
    """A source read: its items, notes and the listing's known links (``read``) stored with
    the new validators and any permanent move, and the report says what changed."""
    items, notes, listed = read
    report.items_seen = len(items)
    report.notes = notes
    for note in notes:
        log.info("source %r: %s", source.name, note)
    changes: dict[str, object] = {
        "next_attempt_at": None,
        "etag": _validator(fetched, "etag"),
        "last_modified": _validator(fetched, "last-modified"),
    }
    if fetched.moved_to and fetched.moved_to != row.fetch_url:
        changes["fetch_url"] = fetched.moved_to
        report.notes.append(f"moved permanently to {fetched.moved_to}; fetched from there now")
        log.info("source %r: moved permanently to %s", source.name, fetched.moved_to)
    outcome = FetchOutcome(
        row.id, items, changes, None, len(items), listed_urls=tuple(sorted(listed))
    )
    saved = await save(writer, source, outcome, report)
    if saved is not None:
        report.new_items = saved.new
        _log_saved(source.name, len(items), saved, report)
    return report


def _log_saved(name: str, count: int, saved: ItemsStored, report: SourceReport) -> None:
    """Log each stored item the feed changed, and the source's totals; note the changes."""
    for update in saved.updated:
        log.info(
            "source %r: article %d changed in the feed (%s); now %r, was %r",
            name,
            update.article_id,
            ", ".join(update.changed),
            update.title,
            update.old_title,
        )
    if saved.updated:
        report.notes.append(f"{len(saved.updated)} stored items changed in the feed; updated")
    log.info(
        "source %r: %d items, %d new, %d updated", name, count, report.new_items, len(saved.updated)
    )
