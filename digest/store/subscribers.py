"""Subscriber queries: adding, confirming, updating, unsubscribing and suppressing people.

A mixin of ``Store`` (kept apart so store.py stays readable); all SQL stays in ``store/``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import Table, Text, func, insert, literal, null, or_
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from digest.store.base import StoreBase
from digest.store.tables import (
    SUBSCRIBER_EVENTS,
    SUBSCRIBERS,
    Subscriber,
    SubscriberEvent,
    UTCDateTime,
    utcnow,
)

# The statuses in which someone has ended their subscription, or their mail server has
# (bounced) or they reported the mail (complained). Nothing but their own request brings
# them back; every other status (pending, active, paused) can still end in one of these.
LEFT = ("unsubscribed", "bounced", "complained")
LEFT_SHOWN = 1000  # addresses an import names of those it did not re-add (a count of all)


@dataclass
class ImportCounts:
    """What a bulk import did with its rows, added up chunk by chunk."""

    added: int = 0
    already: int = 0  # active already
    not_readded: int = 0  # in another status (left, pending, paused): an import is no consent
    left: list[str] = field(default_factory=list)  # their addresses, the first LEFT_SHOWN
    # Addresses a row earlier in the same import already added, as (index in the chunk, email).
    twice: list[tuple[int, str]] = field(default_factory=list)


class _Person(Protocol):
    """A row to import (``digest.subscribers.NewSubscriber``)."""

    @property
    def email(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def topics(self) -> tuple[str, ...]: ...
    @property
    def timezone(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def locale(self) -> str | None: ...


class SubscriberQueries(StoreBase):
    """The subscriber queries (``Store`` inherits them)."""

    def add_subscriber(
        self,
        email: str,
        name: str | None = None,
        topics: Sequence[str] = (),
        timezone: str | None = None,
        locale: str | None = None,
        by: str = "an admin (`digest subscribers add`)",
    ) -> tuple[Subscriber, bool]:
        """Add or reactivate a subscriber; returns the row and whether it changed anything.

        Reactivating someone (at their request: the admin's ``subscribers add``) also sets
        the details given, as a new row would have them.
        """
        with self.session() as s:
            row = s.exec(select(Subscriber).where(Subscriber.email == email)).first()
            before = row.status if row is not None else None
            if row is not None:
                if row.status == "active":
                    return row, False
                row.status, row.unsubscribed_at = "active", None
                details = {"name": name, "timezone": timezone, "locale": locale}
                details["topics"] = ",".join(topics) if topics else None
                for key, value in details.items():
                    if value is not None:
                        setattr(row, key, value)
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
                s.flush()
                _record(s, row, before, by)
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

    def unsubscribe(
        self,
        *,
        email: str | None = None,
        public_id: str | None = None,
        by: str = "the unsubscribe link",
    ) -> bool:
        """Mark the subscriber unsubscribed at once; True when they had not already left.

        A pending or paused subscriber can leave too (a paused one could otherwise resume);
        one who bounced or complained keeps that status, which says more. ``by``: what made
        them leave, for their history (the default: the link in every email).
        """
        with self.session() as s:
            query = select(Subscriber)
            query = (
                query.where(Subscriber.email == email)
                if email is not None
                else query.where(Subscriber.public_id == public_id)
            )
            row = s.exec(query).first()
            if row is None or row.status in LEFT:
                return False
            before = row.status
            row.status, row.unsubscribed_at = "unsubscribed", utcnow()
            s.add(row)
            _record(s, row, before, by)
            s.commit()
            return True

    def suppress_subscriber(
        self, subscriber_id: int, status: str = "bounced", by: str = ""
    ) -> bool:
        """Stop mailing a subscriber (a hard bounce, a complaint); True unless they had left.

        Paused and pending subscribers are suppressed too: a paused reader whose address
        bounces must not be mailed again when they resume. ``by``: where the news came
        from, for their history (default: "a bounce" or "a complaint").
        """
        with self.session() as s:
            row = s.get(Subscriber, subscriber_id)
            if row is None or row.status in LEFT:
                return False
            before = row.status
            row.status, row.unsubscribed_at = status, utcnow()
            s.add(row)
            default = "a complaint" if status == "complained" else "a bounce"
            _record(s, row, before, by or default)
            s.commit()
            return True

    def subscribers(self, status: str | None = None) -> list[Subscriber]:
        """Subscribers in the order they joined, optionally only those with ``status``."""
        with self.session() as s:
            query = select(Subscriber).order_by(col(Subscriber.id))
            if status is not None:
                query = query.where(Subscriber.status == status)
            return list(s.exec(query))

    def find_subscribers(
        self, statuses: Sequence[str] = (), topic: str | None = None, text: str | None = None
    ) -> list[Subscriber]:
        """Subscribers in the order they joined, narrowed to ``statuses`` (none: all), to
        those who get ``topic``'s stories (it is one of theirs, or they chose none, which is
        every topic), and to those whose address or name holds ``text`` in any case."""
        with self.session() as s:
            query = select(Subscriber).order_by(col(Subscriber.id))
            if statuses:
                query = query.where(col(Subscriber.status).in_(statuses))
            if topic is not None:
                topics = col(Subscriber.topics)
                query = query.where(
                    or_(
                        topics == "",
                        topics == topic,
                        topics.startswith(f"{topic},", autoescape=True),
                        topics.endswith(f",{topic}", autoescape=True),
                        topics.contains(f",{topic},", autoescape=True),
                    )
                )
            if text:
                needle = text.lower()
                query = query.where(
                    or_(
                        func.lower(col(Subscriber.email)).contains(needle, autoescape=True),
                        func.lower(func.coalesce(col(Subscriber.name), "")).contains(
                            needle, autoescape=True
                        ),
                    )
                )
            return list(s.exec(query))

    def subscriber_by_email(self, email: str) -> Subscriber | None:
        """The subscriber with this (normalised) address, if any."""
        with self.session() as s:
            return s.exec(select(Subscriber).where(Subscriber.email == email)).first()

    def add_pending(
        self,
        email: str,
        name: str | None,
        topics: Sequence[str],
        by: str = "the sign-up form",
    ) -> Subscriber:
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
                s.flush()
                _record(s, row, None, by)
                s.commit()
            except IntegrityError:  # the same address signed up twice at once
                s.rollback()
                found = self.subscriber_by_email(email)
                assert found is not None
                return found
            s.refresh(row)
            return row

    def set_subscriber(self, subscriber_id: int, **changes: object) -> Subscriber | None:
        """Change a subscriber's status or preferences (status, topics, locale, timezone);
        ``by``: who changed the status, for their history (default: they did, on their
        preferences page)."""
        by = str(changes.pop("by", "their preferences page"))
        allowed = {"status", "topics", "locale", "timezone", "name"}
        if set(changes) - allowed:
            raise AttributeError(f"cannot set {sorted(set(changes) - allowed)} on a subscriber")
        with self.session() as s:
            row = s.get(Subscriber, subscriber_id)
            if row is None:
                return None
            before = row.status
            for key, value in changes.items():
                setattr(row, key, value)
            if changes.get("status") in LEFT:
                row.unsubscribed_at = utcnow()
            elif "status" in changes:
                row.unsubscribed_at = None
            s.add(row)
            if row.status != before:
                _record(s, row, before, by)
            s.commit()
            s.refresh(row)
            return row

    def subscriber_history(self, subscriber_id: int, limit: int = 200) -> list[SubscriberEvent]:
        """The person's status changes, newest first (ties: the later written first)."""
        with self.session() as s:
            query = (
                select(SubscriberEvent)
                .where(SubscriberEvent.subscriber_id == subscriber_id)
                .order_by(col(SubscriberEvent.at).desc(), col(SubscriberEvent.id).desc())
                .limit(limit)
            )
            return list(s.exec(query))

    def subscriber_by_public_id(self, public_id: str) -> Subscriber | None:
        """The subscriber a signed link names, if any."""
        with self.session() as s:
            return s.exec(select(Subscriber).where(Subscriber.public_id == public_id)).first()

    def confirm_subscriber(
        self,
        public_id: str,
        requested_at: datetime,
        topics: Sequence[str] | None = None,
        by: str = "the confirmation link",
    ) -> Subscriber | None:
        """A confirmation link was opened: the subscriber as it stands afterwards, if any.

        Pending becomes active. Someone who left comes back only through a link requested
        after they left (``requested_at``: when the link was made), so an old link,
        clicked again or fetched by a mail scanner, cannot undo an unsubscription, a bounce
        or a complaint. Active and paused subscribers stay as they are. ``topics``: those
        chosen on the sign-up form, applied when the row becomes active.
        """
        with self.session() as s:
            row = s.exec(select(Subscriber).where(Subscriber.public_id == public_id)).first()
            if row is None:
                return None
            left = row.status in LEFT
            # Links are dated to the second: one made in the second they left counts as old.
            if row.status == "pending" or (
                left
                and row.unsubscribed_at is not None
                and requested_at > row.unsubscribed_at.replace(microsecond=0)
            ):
                before = row.status
                row.status, row.unsubscribed_at = "active", None
                if topics is not None:
                    row.topics = ",".join(topics)
                s.add(row)
                _record(s, row, before, by)
                s.commit()
                s.refresh(row)
            return row

    def last_subscriber_id(self) -> int:
        """The highest subscriber id so far (0 for none): an import adds rows above it."""
        with self.engine.connect() as connection:
            return int(connection.execute(core_select(func.max(SUBSCRIBERS.c.id))).scalar() or 0)

    def import_subscribers(
        self,
        people: Sequence[_Person],
        added_after: int,
        counts: ImportCounts,
        by: str = "an import",
    ) -> None:
        """Add the people of one chunk of an import who are not subscribers yet, adding to
        ``counts``: one lookup of the chunk's addresses and one insert for the new ones.

        An address already in (any status) is left as it is. ``added_after``: the highest id
        before the import began, so a row above it was added by an earlier chunk of the same
        file (its address is in the file twice). Each new row takes the status given (an
        export's row imports as it was). A sign-up of the same address between the lookup
        and the insert is a conflict: the chunk is looked up again.
        """
        for attempt in range(3):
            try:
                with self.engine.begin() as connection:
                    chunk = _import_chunk(connection, people, added_after, by)
            except IntegrityError:
                if attempt == 2:
                    raise
                continue
            counts.added += chunk.added
            counts.already += chunk.already
            counts.not_readded += chunk.not_readded
            counts.twice.extend(chunk.twice)
            counts.left.extend(chunk.left[: max(LEFT_SHOWN - len(counts.left), 0)])
            return


def _import_chunk(
    connection: Connection, people: Sequence[_Person], added_after: int, by: str
) -> ImportCounts:
    """``import_subscribers`` for one chunk, in the caller's transaction."""
    found = {
        email: (row_id, status)
        for email, row_id, status in connection.execute(
            core_select(SUBSCRIBERS.c.email, SUBSCRIBERS.c.id, SUBSCRIBERS.c.status).where(
                SUBSCRIBERS.c.email.in_({p.email for p in people})
            )
        )
    }
    chunk = ImportCounts()
    now = utcnow()
    new = []
    for index, person in enumerate(people):
        row_id, status = found.get(person.email, (None, None))
        if row_id is None:
            new.append(
                {
                    "email": person.email,
                    "name": person.name,
                    "public_id": secrets.token_urlsafe(12),
                    "status": person.status,
                    "topics": ",".join(person.topics),
                    "timezone": person.timezone,
                    "locale": person.locale,
                    "created_at": now,
                    "unsubscribed_at": now if person.status in LEFT else None,
                }
            )
            found[person.email] = (-1, person.status)
        elif row_id == -1 or row_id > added_after:  # added by this import: in the file twice
            chunk.twice.append((index, person.email))
        elif status == "active":
            chunk.already += 1
        else:
            chunk.not_readded += 1
            if len(chunk.left) < LEFT_SHOWN:
                chunk.left.append(person.email)
    if new and connection.dialect.name == "postgresql":
        _copy(connection, SUBSCRIBERS, new)
    elif new:
        connection.execute(insert(SUBSCRIBERS), new)
    if new:  # their first line of history, in one statement
        _record_made(connection, [str(r["email"]) for r in new], by, now)
    chunk.added = len(new)
    return chunk


def record_status(
    into: Session | Connection,
    changes: Sequence[tuple[int, str | None, str]],
    by: str,
    at: datetime | None = None,
) -> None:
    """Write status changes, (subscriber id, before, after), to the subscribers' history in
    the caller's transaction: every store method that sets a status calls this, so no change
    goes unrecorded. A status before of None means the row was made then."""
    when = at or utcnow()
    rows = [
        {"subscriber_id": i, "from_status": before, "to_status": after, "at": when, "by": by}
        for i, before, after in changes
    ]
    if not rows:
        return
    if isinstance(into, Session):
        into.add_all(SubscriberEvent.model_validate(row) for row in rows)
    else:
        into.execute(insert(SUBSCRIBER_EVENTS), rows)


def _record_made(connection: Connection, emails: Sequence[str], by: str, at: datetime) -> None:
    """``record_status`` for rows an import just made, known by address: their ids and
    statuses read by the INSERT itself (no lookup of the ids in between)."""
    made = core_select(
        SUBSCRIBERS.c.id,
        literal(at, UTCDateTime()),
        null(),
        SUBSCRIBERS.c.status,
        literal(by, Text()),
    ).where(SUBSCRIBERS.c.email.in_(emails))
    connection.execute(
        insert(SUBSCRIBER_EVENTS).from_select(
            ["subscriber_id", "at", "from_status", "to_status", "by"], made
        )
    )


def _record(s: Session, row: Subscriber, before: str | None, by: str) -> None:
    """One row's change, the row in the session (flushed, so a new one has its id)."""
    assert row.id is not None
    record_status(s, [(row.id, before, row.status)], by)


def _copy(connection: Connection, table: Table, rows: Sequence[Mapping[str, object]]) -> None:
    """PostgreSQL's COPY of ``rows`` into ``table``, in the connection's transaction: the
    fastest way in (an executemany sends the rows one statement at a time). Each value goes
    through its column type's bind step, as in an INSERT (a datetime as naive UTC)."""
    columns = list(rows[0])
    steps = [table.c[c].type.bind_processor(connection.dialect) for c in columns]
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(
                [
                    row[c] if step is None else step(row[c])
                    for c, step in zip(columns, steps, strict=True)
                ]
            )
