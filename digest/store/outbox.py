"""The outbox: rows queued per edition and subscriber, and what is still to send.

A mixin of ``Store``; all SQL stays in ``store/``. A claim's life (claimed with a lease,
attempted, renewed, finished, released) is in ``claims.py``; re-queueing between runs in
``requeue.py``; the row conditions they share in ``delivery_rows.py``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, insert, literal, or_, text
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select

from digest.states import DeliveryStatus, SubscriberStatus
from digest.store.base import StoreBase
from digest.store.columns import UTCDateTime
from digest.store.pg import notify_outbox
from digest.store.tables import (
    CLAIMABLE,
    DELIVERIES,
    SUBSCRIBERS,
    Delivery,
    Subscriber,
)


@dataclass(frozen=True)
class OutboxState:
    """An edition's rows still to send: claimable now, and in flight under a lease."""

    pending: int
    in_flight: int
    first_back: datetime | None  # the earliest lease of a row in flight runs out then
    last_back: datetime | None  # and the latest: every row in flight is back by then


@dataclass(frozen=True)
class QueueSummary:
    """The whole outbox at a glance, for `digest status`."""

    pending: int = 0  # claimable now
    deferred: int = 0  # waiting for their retry time
    in_flight: int = 0  # claimed, lease running
    orphaned: int = 0  # claimed by a sender whose lease ran out: it stopped; sent again next
    oldest: datetime | None = None  # the pending row waiting longest, since
    back_at: datetime | None = None  # the last lease of a row in flight runs out then
    next_retry: datetime | None = None  # the first deferred row is due again then


class OutboxQueries(StoreBase):
    """The outbox queries a sender and a run make (``Store`` inherits them)."""

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
        now = self.clock.now()
        have = select(DELIVERIES.c.subscriber_id).where(DELIVERIES.c.edition_id == edition_id)
        chosen = core_select(
            literal(edition_id),
            SUBSCRIBERS.c.id,
            literal(DeliveryStatus.PENDING.value),
            literal(0),
            literal(now, UTCDateTime()),
        ).where(SUBSCRIBERS.c.status == SubscriberStatus.ACTIVE, SUBSCRIBERS.c.id.not_in(have))
        if timezones is not None:
            named = [t for t in timezones if t is not None]
            condition: ColumnElement[bool] = SUBSCRIBERS.c.timezone.in_(named)
            if None in timezones:
                condition = or_(condition, SUBSCRIBERS.c.timezone.is_(None))
            chosen = chosen.where(condition)
        columns = ["edition_id", "subscriber_id", "status", "attempts", "updated_at"]
        with self.engine.begin() as connection:
            try:
                # preserve_rowcount: PostgreSQL's driver reports -1 for INSERT ... SELECT
                # unless asked to keep the count.
                result = connection.execution_options(preserve_rowcount=True).execute(
                    insert(DELIVERIES).from_select(columns, chosen)
                )
                if result.rowcount:
                    notify_outbox(connection)
            except IntegrityError:  # a concurrent sender queued some of them: theirs stand
                return 0
            return int(result.rowcount or 0)

    def active_timezones(self) -> set[str | None]:
        """The distinct time zones of active subscribers (None: no zone of their own)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(SUBSCRIBERS.c.timezone)
                .where(SUBSCRIBERS.c.status == SubscriberStatus.ACTIVE)
                .distinct()
            )
            return {row[0] for row in rows}

    def has_pending(self, edition_id: int) -> bool:
        """The edition has rows a sender could claim now."""
        query = core_select(DELIVERIES.c.id).where(
            DELIVERIES.c.edition_id == edition_id, DELIVERIES.c.status == DeliveryStatus.PENDING
        )
        with self.engine.connect() as connection:
            return connection.execute(query.limit(1)).first() is not None

    def queue_summary(self) -> QueueSummary:
        """Rows still to send over every edition: pending, deferred, in flight (lease
        running) and orphaned (lease run out), the oldest pending row's time and when the
        last lease runs out. Reads the partial index of unfinished rows, not the table."""
        now = self.clock.now()
        # One bound "now" in both places, so PostgreSQL sees the grouped expression as one.
        live = (
            DELIVERIES.c.lease_until.is_not(None)
            & (DELIVERIES.c.lease_until >= bindparam("now", now, UTCDateTime()))
        ).label("live")
        query = (
            core_select(
                DELIVERIES.c.status,
                live,
                func.count(),
                func.min(DELIVERIES.c.updated_at),
                func.max(DELIVERIES.c.lease_until),
                func.min(DELIVERIES.c.retry_at),
            )
            .where(text(CLAIMABLE))
            .group_by(DELIVERIES.c.status, live)
        )
        counts: dict[str, int] = {}
        oldest = back_at = next_retry = None
        with self.engine.connect() as connection:
            for status, held, n, first, last, due in connection.execute(query):
                key = (
                    status
                    if status != DeliveryStatus.SENDING
                    else "in_flight"
                    if held
                    else "orphaned"
                )
                counts[key] = counts.get(key, 0) + int(n)
                if status == DeliveryStatus.PENDING and first is not None:
                    oldest = first if oldest is None else min(oldest, first)
                if key == "in_flight" and last is not None:
                    back_at = last if back_at is None else max(back_at, last)
                if status == DeliveryStatus.DEFERRED and due is not None:
                    next_retry = due if next_retry is None else min(next_retry, due)
        return QueueSummary(
            counts.get(DeliveryStatus.PENDING, 0),
            counts.get(DeliveryStatus.DEFERRED, 0),
            counts.get("in_flight", 0),
            counts.get("orphaned", 0),
            oldest,
            back_at,
            next_retry,
        )

    def outbox_state(self, edition_id: int) -> OutboxState:
        """What the edition still has to send: rows claimable now (pending, of active
        subscribers) and rows in flight (claimed, lease not run out), with the time the
        last lease runs out: if their sender stopped, they come back to pending then."""
        now = self.clock.now()
        pending = (
            core_select(func.count())
            .select_from(
                DELIVERIES.join(SUBSCRIBERS, SUBSCRIBERS.c.id == DELIVERIES.c.subscriber_id)
            )
            .where(
                DELIVERIES.c.edition_id == edition_id, DELIVERIES.c.status == DeliveryStatus.PENDING
            )
            .where(SUBSCRIBERS.c.status == SubscriberStatus.ACTIVE)
        )
        flying = core_select(
            func.count(), func.min(DELIVERIES.c.lease_until), func.max(DELIVERIES.c.lease_until)
        )
        flying = flying.where(
            DELIVERIES.c.edition_id == edition_id,
            DELIVERIES.c.status == DeliveryStatus.SENDING,
            DELIVERIES.c.lease_until >= now,
        )
        with self.engine.connect() as connection:
            waiting = int(connection.execute(pending).scalar() or 0)
            count, first, last = connection.execute(flying).one()
        return OutboxState(waiting, int(count or 0), first, last)  # min/max keep UTCDateTime

    def delivery_counts(self, edition_id: int) -> dict[str, int]:
        """How many rows of the edition are in each state."""
        with self.session() as s:
            rows = s.exec(
                select(Delivery.status, func.count())
                .where(Delivery.edition_id == edition_id)
                .group_by(Delivery.status)
            )
            return {status: int(n) for status, n in rows}

    def message_recipients(self, message_ids: Collection[str]) -> dict[str, int]:
        """Which subscriber each of these Message-IDs was sent to (ids never sent are absent).

        A bounce report is believed only for the address a message it quotes went to.
        """
        if not message_ids:
            return {}
        query = core_select(DELIVERIES.c.message_id, DELIVERIES.c.subscriber_id).where(
            DELIVERIES.c.message_id.in_(sorted(set(message_ids)))
        )
        with self.engine.connect() as connection:
            return {str(m): int(s) for m, s in connection.execute(query)}

    def failed_before(self, subscriber_id: int, edition_id: int, reason: str) -> int | None:
        """The first other edition whose row for this subscriber failed for ``reason``, if
        any: a failure of the reader's own data was reported then, and is not again."""
        with self.session() as s:
            return s.exec(
                select(Delivery.edition_id)
                .where(
                    Delivery.subscriber_id == subscriber_id,
                    Delivery.edition_id != edition_id,
                    Delivery.status == DeliveryStatus.FAILED,
                    Delivery.error == reason,
                )
                .order_by(col(Delivery.edition_id))
                .limit(1)
            ).first()

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
