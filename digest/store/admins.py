"""Admin accounts and what the admin console reads: a mixin of ``Store``.

The console's reports (counts by status, a person's deliveries, the metrics' figures) are
queries like any other, so they live here, not in the views.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func
from sqlalchemy import select as core_select
from sqlmodel import col, select

from digest.states import (
    CLAIMABLE_DELIVERY_STATES,
    QUEUED_DELIVERY_STATES,
    DeliveryStatus,
    SubscriberStatus,
)
from digest.store.base import StoreBase
from digest.store.delivery_rows import claimable, off_claim_path
from digest.store.tables import DELIVERIES, SUBSCRIBERS, Admin, Delivery, Edition, Subscriber


class AdminQueries(StoreBase):
    """Admin accounts and the console's read-only reports (``Store`` inherits them)."""

    # --- accounts --------------------------------------------------------------------------

    def add_admin(self, email: str, password_hash: str) -> Admin | None:
        """A new account; None when one with this address exists already."""
        return self.insert_new(
            Admin(email=email, password_hash=password_hash, created_at=self.clock.now())
        )

    def admins(self) -> list[Admin]:
        """Every admin account, by address."""
        with self.session() as s:
            return list(s.exec(select(Admin).order_by(col(Admin.email))))

    def admin_by_email(self, email: str) -> Admin | None:
        """The account with this (lower-case) address, if any."""
        with self.session() as s:
            return s.exec(select(Admin).where(Admin.email == email)).first()

    def admin_by_id(self, admin_id: int) -> Admin | None:
        """The account a session cookie names, if it still exists."""
        with self.session() as s:
            return s.get(Admin, admin_id)

    def remove_admin(self, email: str) -> bool:
        """Delete the account (its sessions end with it); True when there was one."""
        with self.session() as s:
            row = s.exec(select(Admin).where(Admin.email == email)).first()
            if row is None:
                return False
            s.delete(row)
            s.commit()
            return True

    def admin_logged_in(self, admin_id: int, password_hash: str | None = None) -> None:
        """Note a login (and store a rehashed password when the hash parameters grew)."""
        with self.session() as s:
            row = s.get(Admin, admin_id)
            if row is None:
                return
            row.last_login_at = self.clock.now()
            if password_hash:
                row.password_hash = password_hash
            s.add(row)
            s.commit()

    def end_admin_sessions(self, admin_id: int) -> int:
        """Raise the account's generation, so every cookie issued before is refused; the new one."""
        with self.session() as s:
            row = s.get(Admin, admin_id)
            if row is None:
                return 0
            row.generation += 1
            s.add(row)
            s.commit()
            return row.generation

    # --- reports ---------------------------------------------------------------------------

    def subscriber_counts(self) -> dict[str, int]:
        """How many subscribers are in each status."""
        with self.session() as s:
            rows = s.exec(select(Subscriber.status, func.count()).group_by(col(Subscriber.status)))
            return {status: int(n) for status, n in rows}

    def subscriber_deliveries(
        self, subscriber_id: int, limit: int = 50
    ) -> list[tuple[Delivery, Edition]]:
        """The person's latest delivery rows with their editions, newest first."""
        with self.session() as s:
            return list(
                s.exec(
                    select(Delivery, Edition)
                    .join(Edition, col(Edition.id) == col(Delivery.edition_id))
                    .where(Delivery.subscriber_id == subscriber_id)
                    .order_by(col(Delivery.id).desc())
                    .limit(limit)
                )
            )

    def edition_deliveries(
        self, edition_id: int, state: str = "", after: int = 0, limit: int = 500
    ) -> list[tuple[Delivery, Subscriber]]:
        """A page of the edition's delivery rows (in ``state``, any when empty) with their
        readers, in the order the readers joined (subscriber id), from after the reader
        ``after``: the console's list, which must not load an edition's 100,000 rows to
        show 500. The order is the one of the (edition, subscriber) unique index, so a page
        reads that edition's rows alone; in row order, the walk had to find the edition's
        first row, and read every earlier edition's rows on the way."""
        query = (
            select(Delivery, Subscriber)
            .join(Subscriber, col(Subscriber.id) == col(Delivery.subscriber_id))
            .where(Delivery.edition_id == edition_id, col(Delivery.subscriber_id) > after)
            .order_by(col(Delivery.subscriber_id))
            .limit(limit)
        )
        if state:
            query = query.where(Delivery.status == state)
        with self.session() as s:
            return list(s.exec(query))

    def edition_bounces(self, edition_id: int) -> int:
        """Readers this edition's message bounced (or who complained of it); the rule is
        ``editions_bounces``'s."""
        return self.editions_bounces([edition_id]).get(edition_id, 0)

    def editions_bounces(self, edition_ids: Collection[int]) -> dict[int, int]:
        """Readers each edition's message bounced (or who complained of it): their address
        was suppressed when its message failed (a 5.1.1 at the send) or after it went out
        (a bounce report arrives later), and no later message to them, sent or failed,
        came between. A bounce belongs to the last mail before it: counted on every earlier
        edition too, the one that bounced could not be told from those that arrived.

        One grouped query for all the editions a page shows (an edition with none is
        absent): one per edition made the editions page cost a query per line."""
        if not edition_ids:
            return {}
        # Said as: the row is the reader's last message (sent or failed) at or before
        # their suppression (ties all count). Each such reader's rows are read once for
        # that last time, not once per row of theirs shown (a NOT EXISTS of a later one).
        mine, theirs = DELIVERIES.alias("mine"), DELIVERIES.alias("theirs")
        tried = (DeliveryStatus.SENT, DeliveryStatus.FAILED)
        gone = (SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED)
        at = func.coalesce(mine.c.sent_at, mine.c.updated_at)
        # Rows of the editions shown, tried before their reader's suppression. The few
        # readers who bounced are a list the (edition, subscriber) index is probed with:
        # joined alone, SQLite read every row of the editions to find those few.
        shown = (
            core_select(
                mine.c.edition_id.label("edition_id"),
                mine.c.subscriber_id.label("subscriber_id"),
                at.label("at"),
            )
            .select_from(mine.join(SUBSCRIBERS, SUBSCRIBERS.c.id == mine.c.subscriber_id))
            .where(
                mine.c.edition_id.in_(sorted(set(edition_ids))),
                mine.c.subscriber_id.in_(
                    core_select(SUBSCRIBERS.c.id).where(SUBSCRIBERS.c.status.in_(gone))
                ),
                mine.c.status.in_(tried),
                SUBSCRIBERS.c.status.in_(gone),
                SUBSCRIBERS.c.unsubscribed_at >= at,
            )
            .cte("shown")
        )
        their_at = func.coalesce(theirs.c.sent_at, theirs.c.updated_at)
        last = (
            core_select(
                theirs.c.subscriber_id.label("subscriber_id"), func.max(their_at).label("at")
            )
            .select_from(theirs.join(SUBSCRIBERS, SUBSCRIBERS.c.id == theirs.c.subscriber_id))
            .where(
                theirs.c.subscriber_id.in_(core_select(shown.c.subscriber_id)),
                theirs.c.status.in_(tried),
                their_at <= SUBSCRIBERS.c.unsubscribed_at,
            )
            .group_by(theirs.c.subscriber_id)
            .cte("last")
        )
        query = (
            core_select(shown.c.edition_id, func.count())
            .select_from(
                shown.join(
                    last,
                    (last.c.subscriber_id == shown.c.subscriber_id) & (last.c.at == shown.c.at),
                )
            )
            .group_by(shown.c.edition_id)
        )
        with self.engine.connect() as connection:
            return {int(e): int(n) for e, n in connection.execute(query)}

    def retryable(self, edition_id: int) -> int:
        """The edition's rows a `digest retry` would send: failed, paused or deferred, of
        readers still active (the rest are not mailed: they bounced or left). Each waiting
        row looks up its reader: as a join, the planner could walk every active reader
        (100,000) to find the few whose row waits."""
        waiting = (DeliveryStatus.FAILED, DeliveryStatus.PAUSED, DeliveryStatus.DEFERRED)
        active = (
            core_select(SUBSCRIBERS.c.id)
            .where(
                SUBSCRIBERS.c.id == DELIVERIES.c.subscriber_id,
                SUBSCRIBERS.c.status == SubscriberStatus.ACTIVE,
            )
            .exists()
        )
        query = core_select(func.count()).where(
            DELIVERIES.c.edition_id == edition_id, DELIVERIES.c.status.in_(waiting), active
        )
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar() or 0)

    def delivery_reasons(self, edition_id: int, limit: int = 10) -> list[tuple[str, str, int]]:
        """The edition's (state, reason, rows) for rows that carry a reason, commonest first."""
        return self.editions_delivery_reasons([edition_id], limit).get(edition_id, [])

    def editions_delivery_reasons(
        self, edition_ids: Collection[int], limit: int = 10
    ) -> dict[int, list[tuple[str, str, int]]]:
        """Each edition's (state, reason, rows) for rows that carry a reason, commonest
        first, at most ``limit`` of them (an edition with none is absent). One query for
        all the editions a page shows; the window keeps each edition's first ``limit``
        in the database, as reasons that name the address could be one per row."""
        if not edition_ids:
            return {}
        rows = func.count()
        grouped = (
            core_select(
                DELIVERIES.c.edition_id,
                DELIVERIES.c.status,
                DELIVERIES.c.error,
                rows.label("n"),
                func.row_number()
                .over(
                    partition_by=DELIVERIES.c.edition_id,
                    order_by=(rows.desc(), DELIVERIES.c.status, DELIVERIES.c.error),
                )
                .label("place"),
            )
            .where(
                DELIVERIES.c.edition_id.in_(sorted(set(edition_ids))),
                DELIVERIES.c.error.is_not(None),
                # The server's 250 is no reason. A list, not "!=": it reads the other
                # states' rows through the (edition, status) index, not every sent one.
                DELIVERIES.c.status.in_([s for s in DeliveryStatus if s != DeliveryStatus.SENT]),
            )
            .group_by(DELIVERIES.c.edition_id, DELIVERIES.c.status, DELIVERIES.c.error)
            .subquery()
        )
        query = (
            core_select(grouped.c.edition_id, grouped.c.status, grouped.c.error, grouped.c.n)
            .where(grouped.c.place <= limit)
            .order_by(grouped.c.edition_id, grouped.c.place)
        )
        reasons: dict[int, list[tuple[str, str, int]]] = {}
        with self.engine.connect() as connection:
            for edition, status, error, n in connection.execute(query):
                reasons.setdefault(int(edition), []).append((status, str(error), int(n)))
        return reasons

    def editions_delivery_counts(self, edition_ids: Collection[int]) -> dict[int, dict[str, int]]:
        """How many rows of each edition are in each state (`delivery_counts` of each), in
        one query for all the editions a page shows (an edition with no row is absent)."""
        if not edition_ids:
            return {}
        query = (
            core_select(DELIVERIES.c.edition_id, DELIVERIES.c.status, func.count())
            .where(DELIVERIES.c.edition_id.in_(sorted(set(edition_ids))))
            .group_by(DELIVERIES.c.edition_id, DELIVERIES.c.status)
        )
        counts: dict[int, dict[str, int]] = {}
        with self.engine.connect() as connection:
            for edition, status, n in connection.execute(query):
                counts.setdefault(int(edition), {})[status] = int(n)
        return counts

    def delivery_totals(self) -> dict[str, int]:
        """Every delivery row ever, by state (the metrics' messages by outcome)."""
        with self.session() as s:
            rows = s.exec(select(Delivery.status, func.count()).group_by(col(Delivery.status)))
            return {status: int(n) for status, n in rows}

    def oldest_queued(self) -> datetime | None:
        """When the longest-waiting unsent row was last touched (None: nothing waits).

        Two looks, each through a partial index (the claimable rows, the paused ones off
        the claim's path): no index of all rows starts with the status."""
        claimable_states = [s for s in QUEUED_DELIVERY_STATES if s in CLAIMABLE_DELIVERY_STATES]
        held = [s for s in QUEUED_DELIVERY_STATES if s not in CLAIMABLE_DELIVERY_STATES]
        first = core_select(func.min(DELIVERIES.c.updated_at))
        with self.engine.connect() as connection:
            times = [
                connection.execute(first.where(claimable(*claimable_states))).scalar(),
                connection.execute(first.where(off_claim_path(*held))).scalar(),
            ]
        return min((t for t in times if t is not None), default=None)

    def last_sent_by_digest(self) -> dict[str, datetime]:
        """Each digest's latest message that went out."""
        with self.session() as s:
            rows = s.exec(
                select(Edition.digest_id, func.max(Delivery.sent_at))
                .join(Edition, col(Edition.id) == col(Delivery.edition_id))
                .where(off_claim_path(DeliveryStatus.SENT))
                .group_by(col(Edition.digest_id))
            )
            return {digest: when for digest, when in rows if when is not None}
