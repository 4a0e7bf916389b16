"""Edition and delivery queries: the outbox (queue, claim with a lease, finish, retry) and job runs.

A mixin of ``Store`` (kept apart so store.py stays readable); all SQL stays in ``store/``.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, exists, func, insert, literal, or_, text, update
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import SQLModel, col, select

from digest.store.base import StoreBase
from digest.store.pg import notify_outbox
from digest.store.tables import (
    CLAIMABLE,
    Delivery,
    Edition,
    JobRun,
    Subscriber,
    UTCDateTime,
    utcnow,
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


class DeliveryQueries(StoreBase):
    """The edition, outbox and job-run queries (``Store`` inherits them)."""

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

    def newest_edition(self, digest_id: str) -> Edition | None:
        """The digest's edition of the latest slot, if any."""
        with self.session() as s:
            query = select(Edition).where(Edition.digest_id == digest_id)
            return s.exec(query.order_by(col(Edition.slot).desc())).first()

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

    def edition_went_out(self, edition_id: int) -> bool:
        """A message of the edition went out, or may have: a row sent, or one in flight."""
        d = SQLModel.metadata.tables["deliveries"]
        query = core_select(d.c.id).where(d.c.edition_id == edition_id, _went_out())
        with self.engine.connect() as connection:
            return connection.execute(query.limit(1)).first() is not None

    def rebuild_edition(self, edition_id: int, edition: Edition) -> tuple[Edition, bool]:
        """Put ``edition``'s render and stories in place of the stored edition ``edition_id``
        (which keeps its id and slot), if that one still has no story and went to nobody;
        return the stored edition and whether it was rebuilt.

        One conditional UPDATE: when another run rebuilt or sent it meanwhile, theirs stands.
        """
        editions = SQLModel.metadata.tables["editions"]
        d = SQLModel.metadata.tables["deliveries"]
        went_out = exists().where(d.c.edition_id == editions.c.id, _went_out())
        with self.engine.begin() as connection:
            result = connection.execute(
                update(editions)
                .where(editions.c.id == edition_id, editions.c.story_count == 0, ~went_out)
                .values(
                    created_at=edition.created_at,
                    subject=edition.subject,
                    html=edition.html,
                    text=edition.text,
                    story_count=edition.story_count,
                    stories=edition.stories,
                )
            )
            rebuilt = bool(result.rowcount)
        stored = self.edition_by_id(edition_id)
        assert stored is not None
        return stored, rebuilt

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
                # preserve_rowcount: PostgreSQL's driver reports -1 for INSERT ... SELECT
                # unless asked to keep the count.
                result = connection.execution_options(preserve_rowcount=True).execute(
                    insert(deliveries).from_select(columns, chosen)
                )
                if result.rowcount:
                    notify_outbox(connection)
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

    def requeue_deferred(self, edition_id: int, due_only: bool = True) -> int:
        """Deferred rows (a 4xx last time) whose retry time has come become pending again
        (every deferred row when not ``due_only``: `digest retry`)."""
        d = SQLModel.metadata.tables["deliveries"]
        return self._update_deliveries(
            edition_id,
            [d.c.status == "deferred", *([_due(utcnow())] if due_only else [])],
            status="pending",
        )

    def unfinished_editions(
        self,
        digest_id: str,
        since: datetime | None = None,
        before: datetime | None = None,
        due_only: bool = True,
    ) -> list[Edition]:
        """The digest's editions (slot in [since, before)) with rows a run should still send,
        oldest first: pending, deferred (whose retry time has come, if ``due_only``), or
        claimed by a sender whose lease ran out."""
        editions = SQLModel.metadata.tables["editions"]
        d = SQLModel.metadata.tables["deliveries"]
        query = select(Edition).where(
            Edition.digest_id == digest_id,
            exists().where(d.c.edition_id == editions.c.id, _unfinished(due_only)),
        )
        if since is not None:
            query = query.where(col(Edition.slot) >= since)
        if before is not None:
            query = query.where(col(Edition.slot) < before)
        with self.session() as s:
            return list(s.exec(query.order_by(col(Edition.slot))))

    def expire_unfinished(self, edition_id: int, reason: str) -> int:
        """The edition's rows still waiting to go (pending, deferred, or claimed by a dead
        sender) become failed with ``reason``: too late to send. Count them."""
        return self._update_deliveries(
            edition_id,
            [_unfinished(due_only=False)],
            status="failed",
            error=reason,
            lease_until=None,
            claim_token=None,
            retry_at=None,
        )

    def has_pending(self, edition_id: int) -> bool:
        """The edition has rows a sender could claim now."""
        d = SQLModel.metadata.tables["deliveries"]
        query = core_select(d.c.id).where(d.c.edition_id == edition_id, d.c.status == "pending")
        with self.engine.connect() as connection:
            return connection.execute(query.limit(1)).first() is not None

    def pause_unsent(self, edition_id: int, reason: str) -> int:
        """The edition's unsent rows (pending, and deferred: the refusals that spent the
        budget) wait for the admin: no run or retry sends them until `digest retry`
        (``resume_paused``). Count them."""
        d = SQLModel.metadata.tables["deliveries"]
        return self._update_deliveries(
            edition_id,
            [d.c.status.in_(("pending", "deferred"))],
            status="paused",
            error=reason,
            retry_at=None,
        )

    def resume_paused(self, edition_id: int) -> int:
        """`digest retry`: the edition's paused rows are pending again. Count them."""
        d = SQLModel.metadata.tables["deliveries"]
        return self._update_deliveries(
            edition_id, [d.c.status == "paused"], status="pending", error=None
        )

    def reclaim_expired(self, edition_id: int) -> int:
        """Claimed rows whose lease ran out (their sender died) become pending again."""
        return self._update_deliveries(
            edition_id,
            [_orphaned(utcnow())],
            status="pending",
            lease_until=None,
            claim_token=None,
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
        """Pending (or paused) rows of people who left (or bounced) since they were queued:
        'suppressed'."""
        d = SQLModel.metadata.tables["deliveries"]
        people = SQLModel.metadata.tables["subscribers"]
        inactive = core_select(people.c.id).where(people.c.status != "active")
        return self._update_deliveries(
            edition_id,
            [d.c.status.in_(("pending", "paused")), d.c.subscriber_id.in_(inactive)],
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
            if result.rowcount and values.get("status") == "pending":
                notify_outbox(connection)  # rows to send: wake the workers
            return int(result.rowcount or 0)

    def claim_deliveries(
        self, edition_id: int, limit: int, lease_seconds: float = 300.0
    ) -> list[tuple[Delivery, Subscriber]]:
        """Up to ``limit`` pending rows of active subscribers, claimed with a lease.

        One statement takes the rows: a MATERIALIZED CTE picks them ``FOR UPDATE SKIP
        LOCKED`` (on PostgreSQL; SQLite has one writer), and the UPDATE joins it on id. Two
        senders never claim the same row, and neither waits on the other's: each takes the
        next rows nobody holds (Oban's fetch; a plain ``id IN (subquery LIMIT n)`` lets the
        loser of a race re-check the winner's rows, find none and stop, and lets the planner
        run the LIMIT subquery once per row). The partial index on claimable rows keeps
        the pick fast however many old rows the table holds, even before ANALYZE.

        The claim is committed before anything is sent. Rows come in id order (keyset), so
        memory never holds more than one batch however long the list. Every row of the
        claim carries one new random ``claim_token``: renewing, finishing and releasing
        them need it. An empty answer means "nothing claimable now", not "finished": rows
        may be locked by another claim at this moment (see ``outbox_state``).
        """
        deliveries = SQLModel.metadata.tables["deliveries"]
        subscribers = SQLModel.metadata.tables["subscribers"]
        now = utcnow()
        token = secrets.token_hex(16)
        picked = (
            core_select(deliveries.c.id)
            .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
            .where(
                deliveries.c.edition_id == edition_id,
                deliveries.c.status == "pending",
                subscribers.c.status == "active",
            )
            .order_by(deliveries.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=deliveries)
            .cte("picked")
            .prefix_with("MATERIALIZED")
        )
        with self.engine.begin() as connection:
            rows = connection.execute(
                update(deliveries)
                .where(deliveries.c.id == picked.c.id)
                .values(
                    status="sending",
                    attempts=deliveries.c.attempts + 1,
                    updated_at=now,
                    lease_until=now + timedelta(seconds=lease_seconds),
                    claim_token=token,
                )
                .returning(*deliveries.c)
            ).all()
            if not rows:
                return []
            # Core rows made into records without validation (model_construct): the ORM's
            # load of a batch cost 20-30 ms, a hundred times the claim itself.
            people = {
                row.id: Subscriber.model_construct(**row._asdict())
                for row in connection.execute(
                    core_select(*subscribers.c).where(
                        subscribers.c.id.in_({r.subscriber_id for r in rows})
                    )
                )
            }
        return [
            (Delivery.model_construct(**row._asdict()), people[row.subscriber_id])
            for row in sorted(rows, key=lambda r: r.id)
        ]

    def queue_summary(self) -> QueueSummary:
        """Rows still to send over every edition: pending, deferred, in flight (lease
        running) and orphaned (lease run out), the oldest pending row's time and when the
        last lease runs out. Reads the partial index of unfinished rows, not the table."""
        d = SQLModel.metadata.tables["deliveries"]
        now = utcnow()
        # One bound "now" in both places, so PostgreSQL sees the grouped expression as one.
        live = (
            d.c.lease_until.is_not(None) & (d.c.lease_until >= bindparam("now", now, UTCDateTime()))
        ).label("live")
        query = (
            core_select(
                d.c.status, live, func.count(), func.min(d.c.updated_at), func.max(d.c.lease_until)
            )
            .where(text(CLAIMABLE))
            .group_by(d.c.status, live)
        )
        counts: dict[str, int] = {}
        oldest = back_at = None
        with self.engine.connect() as connection:
            for status, held, n, first, last in connection.execute(query):
                key = status if status != "sending" else "in_flight" if held else "orphaned"
                counts[key] = counts.get(key, 0) + int(n)
                if status == "pending" and first is not None:
                    oldest = first if oldest is None else min(oldest, first)
                if key == "in_flight" and last is not None:
                    back_at = last if back_at is None else max(back_at, last)
        return QueueSummary(
            counts.get("pending", 0),
            counts.get("deferred", 0),
            counts.get("in_flight", 0),
            counts.get("orphaned", 0),
            oldest,
            back_at,
        )

    def outbox_state(self, edition_id: int) -> OutboxState:
        """What the edition still has to send: rows claimable now (pending, of active
        subscribers) and rows in flight (claimed, lease not run out), with the time the
        last lease runs out: if their sender stopped, they come back to pending then."""
        d = SQLModel.metadata.tables["deliveries"]
        people = SQLModel.metadata.tables["subscribers"]
        now = utcnow()
        pending = (
            core_select(func.count())
            .select_from(d.join(people, people.c.id == d.c.subscriber_id))
            .where(d.c.edition_id == edition_id, d.c.status == "pending")
            .where(people.c.status == "active")
        )
        flying = core_select(func.count(), func.min(d.c.lease_until), func.max(d.c.lease_until))
        flying = flying.where(
            d.c.edition_id == edition_id, d.c.status == "sending", d.c.lease_until >= now
        )
        with self.engine.connect() as connection:
            waiting = int(connection.execute(pending).scalar() or 0)
            count, first, last = connection.execute(flying).one()
        return OutboxState(waiting, int(count or 0), first, last)  # min/max keep UTCDateTime

    def renew_lease(self, claim_token: str, lease_seconds: float) -> int:
        """Extend the lease of the claim's rows still in flight; count the rows still held.

        A sender renews while its batch is out, so a slow batch is never taken by another
        sender as if its sender had died; fewer rows than claimed means some were.
        """
        deliveries = SQLModel.metadata.tables["deliveries"]
        now = utcnow()
        with self.engine.begin() as connection:
            result = connection.execute(
                update(deliveries)
                .where(_held_by(claim_token))
                .values(lease_until=now + timedelta(seconds=lease_seconds), updated_at=now)
            )
            return int(result.rowcount or 0)

    def finish_deliveries(
        self,
        results: Sequence[tuple[int, str, str, str | None]],
        claim_token: str,
        retry_at: Mapping[int, datetime] | None = None,
    ) -> int:
        """Record a batch of (delivery id, status, detail, Message-ID) in one transaction;
        ``retry_at`` says when each deferred row may be tried again. Count the rows recorded.

        Only rows this claim still holds are written: a row whose lease ran out and which
        another sender took belongs to that sender now, and its outcome is theirs to record.
        """
        if not results:
            return 0
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
            result = connection.execute(
                update(deliveries)
                .where(deliveries.c.id == bindparam("row_id"), _held_by(claim_token))
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
            return int(result.rowcount or 0)

    def release_deliveries(self, delivery_ids: Sequence[int], claim_token: str) -> None:
        """Put claimed rows that were never handed to the transport back to pending."""
        if not delivery_ids:
            return
        deliveries = SQLModel.metadata.tables["deliveries"]
        with self.engine.begin() as connection:
            connection.execute(
                update(deliveries)
                .where(deliveries.c.id.in_(list(delivery_ids)), _held_by(claim_token))
                .values(status="pending", lease_until=None, claim_token=None, updated_at=utcnow())
            )

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
        """Messages sent since then, over every edition, and those in flight now (claimed,
        lease running: they are going out, though not recorded yet), for the limits. A
        sender builds its next batch while one is on the wire, and a window counted without
        those would grant their room twice."""
        d = SQLModel.metadata.tables["deliveries"]
        sent = core_select(func.count()).where(d.c.status == "sent", d.c.sent_at >= since)
        flying = core_select(func.count()).where(
            d.c.status == "sending", d.c.lease_until >= utcnow()
        )
        with self.engine.connect() as connection:
            return int(connection.execute(sent).scalar() or 0) + int(
                connection.execute(flying).scalar() or 0
            )

    def window_room(
        self, period: timedelta, limit: int, now: datetime | None = None
    ) -> tuple[int, float]:
        """An hour or day quota as a window over the sends recorded: how many more may go
        now (``limit`` less those sent in the last ``period``), and when that is none, the
        seconds until the oldest send that keeps it full leaves the window."""
        now = now or utcnow()
        since = now - period
        sent = self.sent_since(since)
        if sent < limit:
            return limit - sent, 0.0
        d = SQLModel.metadata.tables["deliveries"]
        query = (
            core_select(d.c.sent_at)
            .where(d.c.status == "sent", d.c.sent_at >= since)
            .order_by(d.c.sent_at)
            .offset(sent - limit)
            .limit(1)
        )
        with self.engine.connect() as connection:
            oldest = connection.execute(query).scalar()
        if oldest is None:  # sent since the count, or in flight: look again soon
            return 0, 1.0
        return 0, max(0.0, (oldest + period - now).total_seconds())

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
        d = SQLModel.metadata.tables["deliveries"]
        query = core_select(d.c.message_id, d.c.subscriber_id).where(
            d.c.message_id.in_(sorted(set(message_ids)))
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
                    Delivery.status == "failed",
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


def _held_by(claim_token: str) -> ColumnElement[bool]:
    """Rows still in flight under this claim (not reclaimed, not taken by another sender)."""
    d = SQLModel.metadata.tables["deliveries"]
    return and_(d.c.status == "sending", d.c.claim_token == claim_token)


def _went_out() -> ColumnElement[bool]:
    """A row whose message went out (sent), or may be going out now (claimed)."""
    d = SQLModel.metadata.tables["deliveries"]
    return d.c.status.in_(("sent", "sending"))


def _unfinished(due_only: bool) -> ColumnElement[bool]:
    """Rows a run still has to send: pending, deferred (due ones only, if ``due_only``), or
    claimed by a sender whose lease ran out; without ``due_only`` paused ones too (they are
    not sent until `digest retry`, but an edition too old to send fails them)."""
    d = SQLModel.metadata.tables["deliveries"]
    now = utcnow()
    if due_only:
        return or_(
            d.c.status == "pending", and_(d.c.status == "deferred", _due(now)), _orphaned(now)
        )
    return or_(d.c.status.in_(("pending", "deferred", "paused")), _orphaned(now))


def _due(now: datetime) -> ColumnElement[bool]:
    """A deferred row's retry time has come (or it never had one)."""
    d = SQLModel.metadata.tables["deliveries"]
    return or_(d.c.retry_at.is_(None), d.c.retry_at <= now)


def _orphaned(now: datetime) -> ColumnElement[bool]:
    """Claimed by a sender whose lease ran out: it died, or stalled past it."""
    d = SQLModel.metadata.tables["deliveries"]
    return and_(d.c.status == "sending", or_(d.c.lease_until.is_(None), d.c.lease_until < now))
