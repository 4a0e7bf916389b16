"""Subscriber queries: adding, confirming, updating, unsubscribing and suppressing people.

A mixin of ``Store`` (kept apart so store.py stays readable); all SQL stays in ``store/``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from digest.store.base import StoreBase
from digest.store.tables import (
    Subscriber,
    utcnow,
)


class SubscriberQueries(StoreBase):
    """The subscriber queries (``Store`` inherits them)."""

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
