"""Every query digest makes, in one place: stages and commands call these, never select()."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, bindparam, delete, func, insert, or_, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection
from sqlmodel import col, select

from digest.records import FeedItem
from digest.states import SourceStatus
from digest.store.admins import AdminQueries
from digest.store.claims import ClaimQueries
from digest.store.editions import EditionQueries
from digest.store.habits import HabitQueries
from digest.store.history import HistoryQueries
from digest.store.ingest import SEEN_EVERY, ItemsStored, in_chunks, store_items
from digest.store.jobs import JobQueries
from digest.store.outbox import OutboxQueries
from digest.store.rates import RateQueries
from digest.store.refusals import RefusalQueries
from digest.store.requeue import RequeueQueries
from digest.store.status_log import StatusLogQueries
from digest.store.stories import StoryQueries
from digest.store.subscriber_import import ImportQueries
from digest.store.subscriber_lists import SubscriberListQueries
from digest.store.subscribers import SubscriberQueries
from digest.store.tables import (
    ARTICLES,
    DIGEST_STARTS,
    EDITIONS,
    SOURCES,
    Article,
    Source,
)
from digest.store.workers import WorkerQueries


@dataclass(frozen=True)
class SourceState:
    """A source's fetch state as the gatherer reads it (a plain record, not an ORM row)."""

    id: int
    name: str
    url: str
    fetch_url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    status: str = SourceStatus.ACTIVE
    next_attempt_at: datetime | None = None
    consecutive_failures: int = 0
    last_error: str | None = None
    items_seen: int = 0


@dataclass(frozen=True)
class FetchOutcome:
    """What one fetch of one source brought: new items, fetch-state changes, or an error."""

    source_id: int
    items: Sequence[FeedItem] = ()
    changes: Mapping[str, object] = field(default_factory=dict)
    error: str | None = None
    items_seen: int = 0
    hint: str | None = None  # what to do about ``error``
    # A 304: the source lists what it listed at its last full answer, which was not read
    # again, so the articles of that answer are marked as still listed (pruning keeps them).
    unchanged: bool = False
    # A page source's links to articles it stored before (not read again, so not among
    # ``items``): listed as well, for a later 304.
    listed_urls: tuple[str, ...] = ()


class Store(
    StoryQueries,
    HabitQueries,
    SubscriberQueries,
    SubscriberListQueries,
    ImportQueries,
    StatusLogQueries,
    EditionQueries,
    OutboxQueries,
    ClaimQueries,
    RequeueQueries,
    JobQueries,
    RateQueries,
    AdminQueries,
    HistoryQueries,
    WorkerQueries,
    RefusalQueries,
):
    """The database, seen through the operations the pipeline and the CLI need."""

    # --- sources ---------------------------------------------------------------------------

    def sync_sources(self, sources: Iterable[tuple[str, str]]) -> dict[str, int]:
        """Make a row for every configured (name, url); return name -> id.

        When the configured URL changes, the fetch state learnt from the old one (a
        redirect target, validators, 'gone', backoff) is forgotten. Core statements: a
        gather of hundreds of sources runs this every time.
        """
        wanted = dict(sources)
        with self.engine.begin() as connection:
            known = {
                name: (source_id, url)
                for source_id, name, url in connection.execute(
                    core_select(SOURCES.c.id, SOURCES.c.name, SOURCES.c.url)
                )
            }
            new = [
                {
                    "name": name,
                    "url": url,
                    "status": SourceStatus.ACTIVE,
                    "consecutive_failures": 0,
                    "items_seen": 0,
                }
                for name, url in wanted.items()
                if name not in known
            ]
            if new:
                connection.execute(insert(SOURCES), new)
            for name, url in wanted.items():
                if name in known and known[name][1] != url:
                    connection.execute(
                        update(SOURCES)
                        .where(SOURCES.c.id == known[name][0])
                        .values(
                            url=url,
                            fetch_url=None,
                            etag=None,
                            last_modified=None,
                            status=SourceStatus.ACTIVE,
                            next_attempt_at=None,
                            consecutive_failures=0,
                        )
                    )
            rows = connection.execute(core_select(SOURCES.c.name, SOURCES.c.id))
            return {name: source_id for name, source_id in rows}

    def source_states(self) -> dict[int, SourceState]:
        """Every source's fetch state by id, as light records (one query per gather)."""
        fields = [f.name for f in dataclasses.fields(SourceState)]
        with self.engine.connect() as connection:
            rows = connection.execute(core_select(*(SOURCES.c[f] for f in fields)))
            return {row.id: SourceState(*row) for row in rows}

    def update_source(self, source_id: int, **changes: object) -> None:
        """Set fetch-state columns of a source (fetch_url, etag, last_modified, status, ...)."""
        with self.session() as s:
            row = s.get(Source, source_id)
            if row is None:
                return
            for key, value in changes.items():
                if not hasattr(row, key):
                    raise AttributeError(f"sources has no column {key!r}")
                setattr(row, key, value)
            s.add(row)
            s.commit()

    def save_fetches(self, outcomes: Sequence[FetchOutcome]) -> list[ItemsStored]:
        """Many fetches' articles and health, in one transaction; what each outcome stored.

        A gather of hundreds of sources writes in batches through this: a handful of
        statements per batch (the look-ups, one multi-row insert, one executemany UPDATE per
        shape of change), not several per source; statement compilation dominated before.
        """
        now = self.clock.now()
        for outcome in outcomes:
            unknown = set(outcome.changes) - set(SOURCES.c.keys())
            if unknown:
                raise AttributeError(f"sources has no column {sorted(unknown)!r}")
        with self.engine.begin() as connection:
            stored = store_items(connection, [(o.source_id, o.items) for o in outcomes], now)
            _still_listed(connection, [o.source_id for o in outcomes if o.unchanged], now)
            _update_health(connection, _with_listings(connection, outcomes, stored), now)
        return stored

    def listed_urls(self, source_id: int, urls: Iterable[str]) -> set[str]:
        """Which of the URLs a page source's listing links the source has stored already
        (its own articles, not those another source carried), each marked as still listed:
        a page source does not fetch them again, so this is where pruning learns that the
        listing still links them (``last_seen_at``, as a feed's items are marked)."""
        wanted = list(set(urls))
        if not wanted:
            return set()
        query = select(Article.id, Article.url, Article.last_seen_at).where(
            col(Article.url).in_(wanted), Article.source_id == source_id
        )
        now = self.clock.now()
        with self.session() as s:
            rows = list(s.exec(query))
            stale = [i for i, _, seen in rows if seen is None or seen <= now - SEEN_EVERY]
            if stale:
                s.exec(update(Article).where(col(Article.id).in_(stale)).values(last_seen_at=now))
                s.commit()
            return {url for _, url, _ in rows}

    def list_sources(self) -> list[Source]:
        """Every source row with its health, by name."""
        with self.session() as s:
            return list(s.exec(select(Source).order_by(col(Source.name))))

    # --- digests ---------------------------------------------------------------------------

    def first_scheduled(self, digest_id: str) -> datetime | None:
        """When the daemon first scheduled the digest on its plan of now (``scheduled_since``),
        read only; None if it never did."""
        with self.engine.connect() as connection:
            return connection.execute(
                core_select(DIGEST_STARTS.c.scheduled_at).where(
                    DIGEST_STARTS.c.digest_id == digest_id
                )
            ).scalar()

    def rescheduled(self, digest_id: str, now: datetime) -> None:
        """The daemon schedules the digest on a new plan from ``now`` (a reload moved its
        schedule, or added it): a slot of that plan before now was never the daemon's, so
        it is neither owed nor missed (``scheduled_since`` returns ``now`` from here on)."""
        moved = (
            update(DIGEST_STARTS)
            .where(DIGEST_STARTS.c.digest_id == digest_id)
            .values(scheduled_at=now)
        )
        with self.engine.begin() as connection:
            if not connection.execute(moved).rowcount:
                connection.execute(
                    insert(DIGEST_STARTS).values(digest_id=digest_id, scheduled_at=now)
                )

    def scheduled_since(self, digest_id: str, now: datetime) -> datetime:
        """When the daemon first scheduled the digest (on its plan of now: a reload that
        moved it counts from then, ``rescheduled``); recorded now if it never did.

        A digest that had editions before this was recorded (an upgrade, or `digest send`
        run by cron before) counts from its first edition's slot.
        """
        with self.engine.begin() as connection:
            recorded: datetime | None = connection.execute(
                core_select(DIGEST_STARTS.c.scheduled_at).where(
                    DIGEST_STARTS.c.digest_id == digest_id
                )
            ).scalar()
            if recorded is not None:
                return recorded
            first: datetime | None = connection.execute(
                core_select(func.min(EDITIONS.c.slot)).where(EDITIONS.c.digest_id == digest_id)
            ).scalar()
            since = min(first, now) if first is not None else now
            connection.execute(
                insert(DIGEST_STARTS).values(digest_id=digest_id, scheduled_at=since)
            )
            return since

    # --- articles --------------------------------------------------------------------------

    def prune_articles(self, older_than: datetime) -> int:
        """Delete articles no gather has found in their source since ``older_than``; count them.

        An article its feed still lists stays however old it is: deleted, it would be stored
        again at the next gather as new, an undated one dated that day.
        """
        seen, first = ARTICLES.c.last_seen_at, ARTICLES.c.first_seen_at
        unseen = or_(seen < older_than, and_(seen.is_(None), first < older_than))
        with self.engine.begin() as connection:
            return int(connection.execute(delete(ARTICLES).where(unseen)).rowcount or 0)


# --- a gather's batched writes ---------------------------------------------------------------


def _still_listed(connection: Connection, source_ids: list[int], now: datetime) -> None:
    """Mark as listed the articles the last full read of each source that answered 304
    listed (at most every SEEN_EVERY, as a feed's items are): one look-up and one statement
    per chunk, and usually no row to write.

    Only those: an article the feed dropped before its last change is not listed by a 304,
    and is pruned after retention. A source without a recorded listing (not read in full
    since the upgrade that added it) has all its articles marked, as before.
    """
    if not source_ids:
        return
    seen = ARTICLES.c.last_seen_at
    stale = or_(seen.is_(None), seen <= now - SEEN_EVERY)
    listed: list[int] = []
    unknown: list[int] = []
    for source_id, listing in connection.execute(
        core_select(SOURCES.c.id, SOURCES.c.listing).where(SOURCES.c.id.in_(source_ids))
    ):
        if listing is None:
            unknown.append(source_id)
        else:
            listed.extend(int(i) for i in listing.split(",") if i)
    if unknown:
        connection.execute(
            update(ARTICLES)
            .where(ARTICLES.c.source_id.in_(unknown), stale)
            .values(last_seen_at=now)
        )
    for chunk in in_chunks(listed):
        connection.execute(
            update(ARTICLES).where(ARTICLES.c.id.in_(chunk), stale).values(last_seen_at=now)
        )


def _with_listings(
    connection: Connection, outcomes: Sequence[FetchOutcome], stored: Sequence[ItemsStored]
) -> list[FetchOutcome]:
    """The outcomes, each full read's with the ids it listed as a change to ``listing``.

    A full read is a success that was not a 304 and brought the items it counted (not a
    health-only outcome). A page source's links to articles stored
    before are looked up by URL (one query per such source; a page lists a few dozen).
    """
    result = []
    for outcome, items in zip(outcomes, stored, strict=True):
        if (
            outcome.error is not None
            or outcome.unchanged
            or (outcome.items_seen and not outcome.items)
        ):
            result.append(outcome)  # not a full read handing over what it listed
            continue
        ids = list(items.listed)
        for chunk in in_chunks(set(outcome.listed_urls)):
            ids += connection.execute(
                core_select(ARTICLES.c.id).where(
                    ARTICLES.c.source_id == outcome.source_id, ARTICLES.c.url.in_(chunk)
                )
            ).scalars()
        listing = ",".join(str(i) for i in sorted(set(ids)))
        result.append(dataclasses.replace(outcome, changes={**outcome.changes, "listing": listing}))
    return result


def _update_health(connection: Connection, outcomes: Sequence[FetchOutcome], now: datetime) -> None:
    """Each outcome's fetch-state changes and health columns: one executemany per shape.

    Outcomes that change the same columns share one compiled UPDATE (a gather of unchanged
    feeds is one statement for the whole batch, not one compiled per source).
    """
    groups: dict[tuple[bool, tuple[str, ...]], list[dict[str, object]]] = {}
    for outcome in outcomes:
        values: dict[str, object] = {**outcome.changes, "last_attempt_at": now}
        if outcome.error is None:
            values.update(
                last_success_at=now,
                consecutive_failures=0,
                last_error=None,
                last_hint=None,
                items_seen=outcome.items_seen,
            )
        else:
            values["last_error"] = outcome.error
            values["last_hint"] = outcome.hint
        failed = outcome.error is not None
        groups.setdefault((failed, tuple(sorted(values))), []).append(
            {"_source_id": outcome.source_id, **values}
        )
    for (failed, _), params in groups.items():
        statement = update(SOURCES).where(SOURCES.c.id == bindparam("_source_id"))
        if failed:
            statement = statement.values(consecutive_failures=SOURCES.c.consecutive_failures + 1)
        connection.execute(statement, params)
