"""Subscriber rows: adding, confirming, updating, unsubscribing and suppressing people.

A mixin of ``Store``; all SQL stays in ``store/``. Finding people is in subscriber_lists.py,
a bulk import in subscriber_import.py, the status history every change here writes to in
status_log.py.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select as core_select
from sqlalchemy import update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import select

from digest.states import LEFT, SubscriberStatus
from digest.store.base import StoreBase
from digest.store.ingest import in_chunks
from digest.store.status_log import record_change, record_status
from digest.store.subscriber_import import ImportCounts
from digest.store.tables import DELIVERIES, SUBSCRIBERS, Subscriber

__all__ = ["LEFT", "ImportCounts", "SubscriberQueries"]


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
                if row.status == SubscriberStatus.ACTIVE:
                    return row, False
                row.status, row.unsubscribed_at = SubscriberStatus.ACTIVE, None
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
                    created_at=self.clock.now(),
                )
            s.add(row)
            try:
                s.flush()
                record_change(s, row, before, by, self.clock.now())
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
            row.status, row.unsubscribed_at = SubscriberStatus.UNSUBSCRIBED, self.clock.now()
            s.add(row)
            record_change(s, row, before, by, self.clock.now())
            s.commit()
            return True

    def suppress_subscriber(
        self, subscriber_id: int, status: str = SubscriberStatus.BOUNCED, by: str = ""
    ) -> bool:
        """Stop mailing a subscriber (a hard bounce, a complaint); True unless they had left.

        Paused and pending subscribers are suppressed too: a paused reader whose address
        bounces must not be mailed again when they resume. ``by``: where the news came
        from, for their history (default: "a bounce" or "a complaint").
        """
        default = "a complaint" if status == SubscriberStatus.COMPLAINED else "a bounce"
        with self.engine.begin() as connection:
            found = connection.execute(
                core_select(SUBSCRIBERS.c.id, SUBSCRIBERS.c.status).where(
                    SUBSCRIBERS.c.id == subscriber_id, SUBSCRIBERS.c.status.not_in(LEFT)
                )
            ).all()
            return suppressed(connection, found, status, by or default, self.clock.now()) > 0

    def subscriber_by_id(self, subscriber_id: int) -> Subscriber | None:
        """One subscriber row."""
        with self.session() as s:
            return s.get(Subscriber, subscriber_id)

    def subscriber_by_email(self, email: str) -> Subscriber | None:
        """The subscriber with this (normalised) address, if any."""
        return self._subscriber_where(Subscriber.email == email)

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
            status=SubscriberStatus.PENDING,
            topics=",".join(topics),
            created_at=self.clock.now(),
        )
        with self.session() as s:
            s.add(row)
            try:
                s.flush()
                record_change(s, row, None, by, self.clock.now())
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
                row.unsubscribed_at = self.clock.now()
            elif "status" in changes:
                row.unsubscribed_at = None
            s.add(row)
            if row.status != before:
                record_change(s, row, before, by, self.clock.now())
            s.commit()
            s.refresh(row)
            return row

    def subscriber_by_public_id(self, public_id: str) -> Subscriber | None:
        """The subscriber a signed link names, if any."""
        return self._subscriber_where(Subscriber.public_id == public_id)

    def _subscriber_where(self, clause: ColumnElement[bool] | bool) -> Subscriber | None:
        with self.session() as s:
            return s.exec(select(Subscriber).where(clause)).first()

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
            if row.status == SubscriberStatus.PENDING or (
                left
                and row.unsubscribed_at is not None
                and requested_at > row.unsubscribed_at.replace(microsecond=0)
            ):
                before = row.status
                row.status, row.unsubscribed_at = SubscriberStatus.ACTIVE, None
                if topics is not None:
                    row.topics = ",".join(topics)
                s.add(row)
                record_change(s, row, before, by, self.clock.now())
                s.commit()
                s.refresh(row)
            return row


# What a hard bounce's suppression writes in the reader's status history.
HARD_BOUNCE_BY = "a bounce (the server refused the address)"


def bounced_suppressed(connection: Connection, delivery_ids: Sequence[int], now: datetime) -> int:
    """The readers of these hard-bounced deliveries suppressed, as ``suppress_subscriber``
    does one (paused and pending ones too; not those who left), in the caller's
    transaction (a batch's record, ``finish_deliveries``, the journal's replay and a run's
    verdict on its refusals record the rows and suppress their readers in one), in chunks
    (a run's verdict may believe tens of thousands); count them."""
    # Two reads by primary key, not one join: a join's plan made on stale statistics
    # (a fresh list, 70k rows queued in the same hour) walked every subscriber for every
    # chunk, ~25 s a chunk on PostgreSQL; each read alone is linear whatever its plan.
    readers: set[int] = set()
    for chunk in in_chunks(delivery_ids):
        readers.update(
            connection.scalars(
                core_select(DELIVERIES.c.subscriber_id).where(DELIVERIES.c.id.in_(chunk))
            )
        )
    found: list[Any] = []
    for chunk in in_chunks(sorted(readers)):
        found += connection.execute(
            core_select(SUBSCRIBERS.c.id, SUBSCRIBERS.c.status).where(
                SUBSCRIBERS.c.id.in_(chunk), SUBSCRIBERS.c.status.not_in(LEFT)
            )
        ).all()
    return suppressed(connection, found, SubscriberStatus.BOUNCED, HARD_BOUNCE_BY, now)


def suppressed(
    connection: Connection, found: Sequence[Any], status: str, by: str, now: datetime
) -> int:
    """Suppress the readers ``found`` ((id, status before) rows of readers who have not
    left) with ``status``, their history saying ``by``; count them. The one rule of a
    suppression, for one reader (``suppress_subscriber``) and a batch's bounces alike."""
    if not found:
        return 0
    for chunk in in_chunks([i for i, _ in found]):
        connection.execute(
            update(SUBSCRIBERS)
            .where(SUBSCRIBERS.c.id.in_(chunk))
            .values(status=status, unsubscribed_at=now)
        )
    record_status(connection, [(i, before, str(status)) for i, before in found], by, now)
    return len(found)
