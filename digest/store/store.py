"""Every query digest makes, in one place: stages and commands call these, never select()."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, delete, func, insert, literal, or_, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, SQLModel, col, select

from digest.records import FeedItem
from digest.store.stories import StoryQueries
from digest.store.tables import (
    Article,
    Delivery,
    Edition,
    JobRun,
    Source,
    Subscriber,
    UTCDateTime,
    utcnow,
)


def content_hash(item: FeedItem) -> str:
    """Identity of last resort: the item's normalised title and summary."""
    text = " ".join(f"{item.title}\x00{item.summary}".casefold().split())
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SourceState:
    """A source's fetch state as the gatherer reads it (a plain record, not an ORM row)."""

    id: int
    name: str
    url: str
    fetch_url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    status: str = "active"
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


class Store(StoryQueries):
    """The database, seen through the operations the pipeline and the CLI need."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def session(self) -> Session:
        """A new session; expire_on_commit off so returned rows stay readable."""
        return Session(self.engine, expire_on_commit=False)

    # --- sources ---------------------------------------------------------------------------

    def sync_sources(self, sources: Iterable[tuple[str, str]]) -> dict[str, int]:
        """Make a row for every configured (name, url); return name -> id.

        When the configured URL changes, the fetch state learnt from the old one (a
        redirect target, validators, 'gone', backoff) is forgotten. Core statements: a
        gather of hundreds of sources runs this every time.
        """
        table = SQLModel.metadata.tables["sources"]
        wanted = dict(sources)
        with self.engine.begin() as connection:
            known = {
                name: (source_id, url)
                for source_id, name, url in connection.execute(
                    core_select(table.c.id, table.c.name, table.c.url)
                )
            }
            new = [
                {
                    "name": name,
                    "url": url,
                    "status": "active",
                    "consecutive_failures": 0,
                    "items_seen": 0,
                }
                for name, url in wanted.items()
                if name not in known
            ]
            if new:
                connection.execute(insert(table), new)
            for name, url in wanted.items():
                if name in known and known[name][1] != url:
                    connection.execute(
                        update(table)
                        .where(table.c.id == known[name][0])
                        .values(
                            url=url,
                            fetch_url=None,
                            etag=None,
                            last_modified=None,
                            status="active",
                            next_attempt_at=None,
                            consecutive_failures=0,
                        )
                    )
            rows = connection.execute(core_select(table.c.name, table.c.id))
            return {name: source_id for name, source_id in rows}

    def source_states(self) -> dict[int, SourceState]:
        """Every source's fetch state by id, as light records (one query per gather)."""
        table = SQLModel.metadata.tables["sources"]
        fields = [f.name for f in dataclasses.fields(SourceState)]
        with self.engine.connect() as connection:
            rows = connection.execute(core_select(*(table.c[f] for f in fields)))
            return {row.id: SourceState(*row) for row in rows}

    def source(self, source_id: int) -> Source | None:
        """One source row: its fetch state (fetch_url, validators, status, backoff)."""
        with self.session() as s:
            return s.get(Source, source_id)

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

    def record_fetch(
        self, source_id: int, *, error: str | None = None, items_seen: int = 0
    ) -> None:
        """Note one fetch attempt's outcome in the source's health columns."""
        self.finish_fetch(source_id, error=error, items_seen=items_seen)

    def finish_fetch(
        self,
        source_id: int,
        changes: Mapping[str, object] | None = None,
        *,
        error: str | None = None,
        items_seen: int = 0,
    ) -> None:
        """One fetch's outcome (as record_fetch) and fetch-state changes, in one transaction."""
        self.save_fetches([FetchOutcome(source_id, (), changes or {}, error, items_seen)])

    def save_fetches(self, outcomes: Sequence[FetchOutcome]) -> list[int]:
        """Many fetches' new articles and health, in one transaction; new articles per outcome.

        A gather of hundreds of sources writes in batches through this: a handful of
        statements per batch (the look-ups, one multi-row insert, one executemany UPDATE per
        shape of change), not several per source; statement compilation dominated before.
        """
        now = utcnow()
        sources = SQLModel.metadata.tables["sources"]
        for outcome in outcomes:
            unknown = set(outcome.changes) - set(sources.c.keys())
            if unknown:
                raise AttributeError(f"sources has no column {sorted(unknown)!r}")
        with self.engine.begin() as connection:
            added = _insert_new(connection, [(o.source_id, o.items) for o in outcomes], now)
            _update_health(connection, outcomes, now)
        return added

    def known_urls(self, urls: Iterable[str]) -> set[str]:
        """Which of these canonical URLs are stored already (a page source skips them)."""
        wanted = list(set(urls))
        if not wanted:
            return set()
        with self.session() as s:
            return set(s.exec(select(Article.url).where(col(Article.url).in_(wanted))))

    def list_sources(self) -> list[Source]:
        """Every source row with its health, by name."""
        with self.session() as s:
            return list(s.exec(select(Source).order_by(col(Source.name))))

    # --- articles --------------------------------------------------------------------------

    def add_articles(self, source_id: int, items: Sequence[FeedItem]) -> int:
        """Store the items not seen before; count them.

        Identity: the same guid from this source, else the same canonical URL from any
        source, else the same title and summary from this source (content hash). Dates are
        clamped: an item without a date, or dated in the future, counts from now.
        """
        if not items:
            return 0
        with self.engine.begin() as connection:
            return _insert_new(connection, [(source_id, items)], utcnow())[0]

    def prune_articles(self, older_than: datetime) -> int:
        """Delete articles first seen before ``older_than``; return how many went."""
        with self.session() as s:
            result = s.execute(delete(Article).where(col(Article.first_seen_at) < older_than))
            s.commit()
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def articles_between(
        self, since: datetime, until: datetime, source_names: Iterable[str]
    ) -> list[tuple[Article, str]]:
        """Articles published in [since, until] by the named sources, with the source name."""
        names = list(source_names)
        with self.session() as s:
            rows = s.exec(
                select(Article, Source.name)
                .join(Source, col(Source.id) == col(Article.source_id))
                .where(
                    col(Article.published_at) >= since,
                    col(Article.published_at) <= until,
                    col(Source.name).in_(names),
                )
                .order_by(col(Article.published_at).desc())
            )
            return [(a, n) for a, n in rows]

    # --- subscribers -----------------------------------------------------------------------

    def add_subscriber(
        self,
        email: str,
        name: str | None = None,
        topics: Sequence[str] = (),
        timezone: str | None = None,
        locale: str | None = None,
    ) -> tuple[Subscriber, bool]:
        """Add or reactivate a subscriber; returns the row and whether it changed anything."""
        with self.session() as s:
            row = s.exec(select(Subscriber).where(Subscriber.email == email)).first()
            if row is not None:
                if row.status == "active":
                    return row, False
                row.status, row.unsubscribed_at = "active", None
            else:
                row = Subscriber(
                    email=email,
                    name=name,
                    public_id=secrets.token_urlsafe(12),
                    topics=",".join(topics),
                    timezone=timezone,
                    locale=locale,
                    created_at=utcnow(),
                )
            s.add(row)
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                existing = s.exec(select(Subscriber).where(Subscriber.email == email)).one()
                return existing, False
            s.refresh(row)
            return row, True

    def update_subscriber(
        self,
        email: str,
        name: str | None = None,
        topics: Sequence[str] = (),
        timezone: str | None = None,
        locale: str | None = None,
    ) -> list[str]:
        """Set the details given (None or no topics: leave as is); the names of those changed."""
        wanted: dict[str, str | None] = {"name": name, "timezone": timezone, "locale": locale}
        if topics:
            wanted["topics"] = ",".join(topics)
        with self.session() as s:
            row = s.exec(select(Subscriber).where(Subscriber.email == email)).one()
            changed = [k for k, v in wanted.items() if v is not None and getattr(row, k) != v]
            for key in changed:
                setattr(row, key, wanted[key])
            if changed:
                s.add(row)
                s.commit()
            return changed

    def unsubscribe(self, *, email: str | None = None, public_id: str | None = None) -> bool:
        """Mark the subscriber unsubscribed at once; True when someone was active."""
        with self.session() as s:
            query = select(Subscriber)
            query = (
                query.where(Subscriber.email == email)
                if email is not None
                else query.where(Subscriber.public_id == public_id)
            )
            row = s.exec(query).first()
            if row is None or row.status != "active":
                return False
            row.status, row.unsubscribed_at = "unsubscribed", utcnow()
            s.add(row)
            s.commit()
            return True

    def suppress_subscriber(self, subscriber_id: int, status: str = "bounced") -> bool:
        """Stop mailing a subscriber (a hard bounce, a complaint); True if they were active."""
        with self.session() as s:
            row = s.get(Subscriber, subscriber_id)
            if row is None or row.status != "active":
                return False
            row.status, row.unsubscribed_at = status, utcnow()
            s.add(row)
            s.commit()
            return True

    def subscribers(self, status: str | None = None) -> list[Subscriber]:
        """Subscribers in the order they joined, optionally only those with ``status``."""
        with self.session() as s:
            query = select(Subscriber).order_by(col(Subscriber.id))
            if status is not None:
                query = query.where(Subscriber.status == status)
            return list(s.exec(query))

    def subscriber_by_email(self, email: str) -> Subscriber | None:
        """The subscriber with this (normalised) address, if any."""
        with self.session() as s:
            return s.exec(select(Subscriber).where(Subscriber.email == email)).first()

    def add_pending(self, email: str, name: str | None, topics: Sequence[str]) -> Subscriber:
        """A web sign-up: a new 'pending' subscriber (confirmation not yet clicked).

        An existing row is returned unchanged, so a stranger re-subscribing an address can
        neither downgrade a confirmed subscriber nor revive an unsubscribed one without
        the owner clicking the new confirmation link.
        """
        existing = self.subscriber_by_email(email)
        if existing is not None:
            return existing
        row = Subscriber(
            email=email,
            name=name,
            public_id=secrets.token_urlsafe(12),
            status="pending",
            topics=",".join(topics),
            created_at=utcnow(),
        )
        with self.session() as s:
            s.add(row)
            try:
                s.commit()
            except IntegrityError:  # the same address signed up twice at once
                s.rollback()
                found = self.subscriber_by_email(email)
                assert found is not None
                return found
            s.refresh(row)
            return row

    def set_subscriber(self, subscriber_id: int, **changes: object) -> Subscriber | None:
        """Change a subscriber's status or preferences (status, topics, locale, timezone)."""
        allowed = {"status", "topics", "locale", "timezone", "name"}
        if set(changes) - allowed:
            raise AttributeError(f"cannot set {sorted(set(changes) - allowed)} on a subscriber")
        with self.session() as s:
            row = s.get(Subscriber, subscriber_id)
            if row is None:
                return None
            for key, value in changes.items():
                setattr(row, key, value)
            if changes.get("status") == "unsubscribed":
                row.unsubscribed_at = utcnow()
            elif changes.get("status") == "active":
                row.unsubscribed_at = None
            s.add(row)
            s.commit()
            s.refresh(row)
            return row

    def subscriber_by_public_id(self, public_id: str) -> Subscriber | None:
        """The subscriber a signed link names, if any."""
        with self.session() as s:
            return s.exec(select(Subscriber).where(Subscriber.public_id == public_id)).first()

    # --- editions and deliveries -----------------------------------------------------------

    def edition_by_id(self, edition_id: int) -> Edition | None:
        """One stored edition by its id."""
        with self.session() as s:
            return s.get(Edition, edition_id)

    def edition(self, digest_id: str, slot: datetime) -> Edition | None:
        """The stored edition of this digest for this slot, if built already."""
        with self.session() as s:
            return s.exec(
                select(Edition).where(Edition.digest_id == digest_id, Edition.slot == slot)
            ).first()

    def save_edition(self, edition: Edition) -> Edition:
        """Store a newly built edition; if another process stored this slot first, return theirs."""
        with self.session() as s:
            s.add(edition)
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                existing = self.edition(edition.digest_id, edition.slot)
                assert existing is not None
                return existing
            s.refresh(edition)
            return edition

    def editions(self, limit: int = 20) -> list[Edition]:
        """The newest editions first."""
        with self.session() as s:
            return list(s.exec(select(Edition).order_by(col(Edition.slot).desc()).limit(limit)))

    def queue_deliveries(
        self,
        edition_id: int,
        timezones: Collection[str | None] | None = None,
    ) -> int:
        """A pending row for every active subscriber without one for this edition; count added.

        One INSERT ... SELECT, so a million subscribers queue in seconds. With
        ``timezones``, only subscribers whose own time zone is in it (None: those without
        one) are queued: a local-time digest's hourly bucket.
        """
        deliveries = SQLModel.metadata.tables["deliveries"]
        subscribers = SQLModel.metadata.tables["subscribers"]
        now = utcnow()
        have = select(deliveries.c.subscriber_id).where(deliveries.c.edition_id == edition_id)
        chosen = core_select(
            literal(edition_id),
            subscribers.c.id,
            literal("pending"),
            literal(0),
            literal(now, UTCDateTime()),
        ).where(subscribers.c.status == "active", subscribers.c.id.not_in(have))
        if timezones is not None:
            named = [t for t in timezones if t is not None]
            condition: ColumnElement[bool] = subscribers.c.timezone.in_(named)
            if None in timezones:
                condition = or_(condition, subscribers.c.timezone.is_(None))
            chosen = chosen.where(condition)
        columns = ["edition_id", "subscriber_id", "status", "attempts", "updated_at"]
        with self.engine.begin() as connection:
            try:
                result = connection.execute(insert(deliveries).from_select(columns, chosen))
            except IntegrityError:  # a concurrent sender queued some of them: theirs stand
                return 0
            return int(result.rowcount or 0)

    def active_timezones(self) -> set[str | None]:
        """The distinct time zones of active subscribers (None: no zone of their own)."""
        subscribers = SQLModel.metadata.tables["subscribers"]
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(subscribers.c.timezone).where(subscribers.c.status == "active").distinct()
            )
            return {row[0] for row in rows}

    def requeue_deferred(self, edition_id: int) -> int:
        """Deferred rows (a 4xx last time) whose retry time has come become pending again."""
        d = SQLModel.metadata.tables["deliveries"]
        return self._update_deliveries(
            edition_id,
            [d.c.status == "deferred", or_(d.c.retry_at.is_(None), d.c.retry_at <= utcnow())],
            status="pending",
        )

    def reclaim_expired(self, edition_id: int) -> int:
        """Claimed rows whose lease ran out (their sender died) become pending again."""
        d = SQLModel.metadata.tables["deliveries"]
        return self._update_deliveries(
            edition_id,
            [d.c.status == "sending", or_(d.c.lease_until.is_(None), d.c.lease_until < utcnow())],
            status="pending",
            lease_until=None,
        )

    def retry_failed(self, edition_id: int) -> int:
        """`digest retry`: failed rows of still-active subscribers go back to pending."""
        d = SQLModel.metadata.tables["deliveries"]
        people = SQLModel.metadata.tables["subscribers"]
        active = core_select(people.c.id).where(people.c.status == "active")
        return self._update_deliveries(
            edition_id,
            [d.c.status == "failed", d.c.subscriber_id.in_(active)],
            status="pending",
            error=None,
        )

    def suppress_inactive(self, edition_id: int) -> int:
        """Pending rows of people who left (or bounced) since they were queued: 'suppressed'."""
        d = SQLModel.metadata.tables["deliveries"]
        people = SQLModel.metadata.tables["subscribers"]
        inactive = core_select(people.c.id).where(people.c.status != "active")
        return self._update_deliveries(
            edition_id,
            [d.c.status == "pending", d.c.subscriber_id.in_(inactive)],
            status="suppressed",
        )

    def _update_deliveries(
        self, edition_id: int, conditions: list[ColumnElement[bool]], **values: object
    ) -> int:
        """Set ``values`` on the edition's rows matching ``conditions``; count them."""
        d = SQLModel.metadata.tables["deliveries"]
        with self.engine.begin() as connection:
            result = connection.execute(
                update(d)
                .where(d.c.edition_id == edition_id, *conditions)
                .values(**values, updated_at=utcnow())
            )
            return int(result.rowcount or 0)

    def claim_deliveries(
        self, edition_id: int, limit: int, lease_seconds: float = 300.0
    ) -> list[tuple[Delivery, Subscriber]]:
        """Up to ``limit`` pending rows of active subscribers, claimed with a lease.

        One UPDATE ... RETURNING takes the rows, so two senders never claim the same one;
        the claim is committed before anything is sent. Rows come in id order (keyset), so
        memory never holds more than one batch however long the list.
        """
        deliveries = SQLModel.metadata.tables["deliveries"]
        subscribers = SQLModel.metadata.tables["subscribers"]
        now = utcnow()
        candidates = (
            select(deliveries.c.id)
            .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
            .where(
                deliveries.c.edition_id == edition_id,
                deliveries.c.status == "pending",
                subscribers.c.status == "active",
            )
            .order_by(deliveries.c.id)
            .limit(limit)
        )
        with self.engine.begin() as connection:
            claimed = (
                connection.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_(candidates), deliveries.c.status == "pending")
                    .values(
                        status="sending",
                        attempts=deliveries.c.attempts + 1,
                        updated_at=now,
                        lease_until=now + timedelta(seconds=lease_seconds),
                    )
                    .returning(deliveries.c.id)
                )
                .scalars()
                .all()
            )
        if not claimed:
            return []
        with self.session() as s:
            return list(
                s.exec(
                    select(Delivery, Subscriber)
                    .join(Subscriber, col(Subscriber.id) == col(Delivery.subscriber_id))
                    .where(col(Delivery.id).in_(list(claimed)))
                    .order_by(col(Delivery.id))
                )
            )

    def finish_deliveries(
        self,
        results: Sequence[tuple[int, str, str, str | None]],
        retry_at: Mapping[int, datetime] | None = None,
    ) -> None:
        """Record a batch of (delivery id, status, detail, Message-ID) in one transaction;
        ``retry_at`` says when each deferred row may be tried again."""
        if not results:
            return
        deliveries = SQLModel.metadata.tables["deliveries"]
        now = utcnow()
        rows = [
            {
                "row_id": delivery_id,
                "status": status,
                "error": detail or None,
                "message_id": message_id,
                "updated_at": now,
                "sent_at": now if status == "sent" else None,
                "retry_at": (retry_at or {}).get(delivery_id),
            }
            for delivery_id, status, detail, message_id in results
        ]
        with self.engine.begin() as connection:
            connection.execute(
                update(deliveries)
                .where(deliveries.c.id == bindparam("row_id"))
                .values(
                    status=bindparam("status"),
                    error=bindparam("error"),
                    message_id=bindparam("message_id"),
                    updated_at=bindparam("updated_at"),
                    sent_at=bindparam("sent_at"),
                    retry_at=bindparam("retry_at"),
                    lease_until=None,
                ),
                rows,
            )

    def finish_delivery(
        self, delivery_id: int, status: str, detail: str = "", message_id: str | None = None
    ) -> None:
        """Record what the transport said about one message (see finish_deliveries)."""
        self.finish_deliveries([(delivery_id, status, detail, message_id)])

    def release_deliveries(self, delivery_ids: Sequence[int]) -> None:
        """Put claimed rows that were never handed to the transport back to pending."""
        if not delivery_ids:
            return
        with self.session() as s:
            s.execute(
                update(Delivery)
                .where(col(Delivery.id).in_(list(delivery_ids)), col(Delivery.status) == "sending")
                .values(status="pending", lease_until=None, updated_at=utcnow())
            )
            s.commit()

    def record_job(self, job: str, started_at: datetime, ok: bool, summary: str) -> None:
        """Keep the last result of a daemon job (one row per job, replaced each run)."""
        with self.session() as s:
            row = s.get(JobRun, job) or JobRun(
                job=job, started_at=started_at, finished_at=utcnow(), ok=ok, summary=summary
            )
            row.started_at, row.finished_at, row.ok, row.summary = (
                started_at,
                utcnow(),
                ok,
                summary[:2000],
            )
            s.add(row)
            s.commit()

    def job_runs(self) -> list[JobRun]:
        """The last result of every daemon job, by name."""
        with self.session() as s:
            return list(s.exec(select(JobRun).order_by(col(JobRun.job))))

    def sent_since(self, since: datetime) -> int:
        """Messages sent since then, over every edition (for hourly and daily limits)."""
        with self.session() as s:
            return int(
                s.exec(
                    select(func.count())
                    .select_from(Delivery)
                    .where(Delivery.status == "sent", col(Delivery.sent_at) >= since)
                ).one()
            )

    def delivery_counts(self, edition_id: int) -> dict[str, int]:
        """How many rows of the edition are in each state."""
        with self.session() as s:
            rows = s.exec(
                select(Delivery.status, func.count())
                .where(Delivery.edition_id == edition_id)
                .group_by(Delivery.status)
            )
            return {status: int(n) for status, n in rows}

    def deliveries(self, edition_id: int) -> list[tuple[Delivery, Subscriber]]:
        """Every delivery row of the edition with its subscriber."""
        with self.session() as s:
            return list(
                s.exec(
                    select(Delivery, Subscriber)
                    .join(Subscriber, col(Subscriber.id) == col(Delivery.subscriber_id))
                    .where(Delivery.edition_id == edition_id)
                    .order_by(col(Delivery.id))
                )
            )


# --- a gather's batched writes -----------------------------------------------------------------

_IN_CHUNK = 500  # values per IN (...) list: well under every backend's limit on parameters


def _chunks(values: Collection[object]) -> Iterable[list[object]]:
    listed = list(values)
    for start in range(0, len(listed), _IN_CHUNK):
        yield listed[start : start + _IN_CHUNK]


def _insert_new(
    connection: Connection,
    batches: Sequence[tuple[int, Sequence[FeedItem]]],
    now: datetime,
) -> list[int]:
    """Insert the items not stored yet (see Store.add_articles); count them per batch.

    Three look-ups for the whole list (guids and content hashes per source, URLs across all
    sources) and one multi-row insert: Core, not ORM objects, and not a query per source,
    since a gather stores thousands of rows (bench/gather.py). Batches are taken in order, so
    a later one sees what an earlier one added, as if each were stored on its own.
    """
    table = SQLModel.metadata.tables["articles"]
    hashed = [
        (source_id, [(item, content_hash(item)) for item in items]) for source_id, items in batches
    ]
    source_ids = {source_id for source_id, items in hashed if items}
    if not source_ids:
        return [0] * len(batches)
    guids = {item.guid for _, items in hashed for item, _ in items}
    urls = {item.url for _, items in hashed for item, _ in items}
    hashes = {digest for _, items in hashed for _, digest in items}
    known_urls: set[str] = set()
    known_guids: set[tuple[int, str]] = set()
    known_hashes: set[tuple[int, str]] = set()
    ids = list(source_ids)
    for chunk in _chunks(urls):
        known_urls.update(
            connection.execute(core_select(table.c.url).where(table.c.url.in_(chunk))).scalars()
        )
    for chunk in _chunks(guids):
        known_guids.update(
            (sid, guid)
            for sid, guid in connection.execute(
                core_select(table.c.source_id, table.c.guid).where(
                    table.c.source_id.in_(ids), table.c.guid.in_(chunk)
                )
            )
        )
    for chunk in _chunks(hashes):
        known_hashes.update(
            (sid, digest)
            for sid, digest in connection.execute(
                core_select(table.c.source_id, table.c.content_hash).where(
                    table.c.content_hash.in_(chunk)
                )
            )
        )
    rows: list[dict[str, object]] = []
    counts = []
    for source_id, items in hashed:
        before = len(rows)
        for item, digest in items:
            guid, url = (source_id, item.guid), item.url
            if guid in known_guids or url in known_urls or (source_id, digest) in known_hashes:
                continue
            known_guids.add(guid)
            known_urls.add(url)
            known_hashes.add((source_id, digest))
            published = item.published_at if item.published_at and item.published_at <= now else now
            rows.append(
                {
                    "source_id": source_id,
                    "guid": item.guid,
                    "url": item.url,
                    "title": item.title,
                    "summary": item.summary,
                    "author": item.author,
                    "published_at": published,
                    "first_seen_at": now,
                    "modified_at": item.modified_at,
                    "image_url": item.image_url,
                    "image_alt": item.image_alt,
                    "language": item.language,
                    "section": item.section,
                    "breaking": item.breaking,
                    "content_hash": digest,
                }
            )
        counts.append(len(rows) - before)
    if rows:
        _insert_many(connection, table, rows)
    return counts


def _insert_many(connection: Connection, table: Table, rows: list[dict[str, object]]) -> None:
    """``connection.execute(insert(table), rows)``, with less work per row.

    The statement is compiled once for the dialect and the rows go to the driver's
    executemany after only each column type's own bind conversion for that dialect (the
    same as SQLAlchemy's: UTCDateTime to SQLite's text form, booleans), since SQLAlchemy's
    generic per-row parameter processing cost more than SQLite's insert. Every row has the
    keys of the first; values are hashable (converted once per distinct value).
    """
    dialect = connection.dialect
    keys = list(rows[0])
    compiled = insert(table).compile(dialect=dialect, column_keys=keys)
    positional = compiled.positiontup is not None
    order = list(compiled.positiontup) if compiled.positiontup is not None else keys
    converters = [
        (i, processor)
        for i, key in enumerate(order)
        if (processor := table.c[key].type.dialect_impl(dialect).bind_processor(dialect))
        is not None
    ]
    # A batch repeats values (first_seen_at is one "now", modified_at mostly None): each
    # distinct value is converted once.
    converted: list[dict[Any, Any]] = [{} for _ in converters]
    params: list[Any] = []
    for row in rows:
        values = [row[key] for key in order]
        for (i, processor), done in zip(converters, converted, strict=True):
            value = values[i]
            if value in done:
                values[i] = done[value]
            else:
                values[i] = done[value] = processor(value)
        params.append(tuple(values) if positional else dict(zip(order, values, strict=True)))
    connection.exec_driver_sql(compiled.string, params)


def _update_health(connection: Connection, outcomes: Sequence[FetchOutcome], now: datetime) -> None:
    """Each outcome's fetch-state changes and health columns: one executemany per shape.

    Outcomes that change the same columns share one compiled UPDATE (a gather of unchanged
    feeds is one statement for the whole batch, not one compiled per source).
    """
    sources = SQLModel.metadata.tables["sources"]
    groups: dict[tuple[bool, tuple[str, ...]], list[dict[str, object]]] = {}
    for outcome in outcomes:
        values: dict[str, object] = {**outcome.changes, "last_attempt_at": now}
        if outcome.error is None:
            values.update(
                last_success_at=now,
                consecutive_failures=0,
                last_error=None,
                items_seen=outcome.items_seen,
            )
        else:
            values["last_error"] = outcome.error
        failed = outcome.error is not None
        groups.setdefault((failed, tuple(sorted(values))), []).append(
            {"_source_id": outcome.source_id, **values}
        )
    for (failed, _), params in groups.items():
        statement = update(sources).where(sources.c.id == bindparam("_source_id"))
        if failed:
            statement = statement.values(consecutive_failures=sources.c.consecutive_failures + 1)
        connection.execute(statement, params)
