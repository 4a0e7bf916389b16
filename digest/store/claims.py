"""A claim's life in the outbox: rows taken with a lease, their attempt counted when they go
out, the lease renewed while they are on the wire, each outcome recorded, unsent rows put
back.

A mixin of ``Store``; all SQL stays in ``store/``. The claim is the one query every batch of
every sender makes, so it is built once (bound parameters, compiled once by SQLAlchemy's
cache) and on PostgreSQL it is one statement in one round trip: no BEGIN or COMMIT (a
single statement in autocommit is its own transaction), no second query for the
subscribers. A claim of 200 rows took 9-20 ms (20-70 ms on a loaded machine) as an
UPDATE, a SELECT of the subscribers by a 200-item IN list compiled afresh each time, a
commit and 400 pydantic records, while the statement itself runs in about 3 ms: the rest
was Python's CPU time, not the round trips (bench/README.md, scale.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CTE, Update, bindparam, func, text, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection

from digest.states import DeliveryStatus, SubscriberStatus
from digest.store.base import StoreBase
from digest.store.columns import UTCDateTime
from digest.store.delivery_rows import held_by, in_state
from digest.store.subscribers import bounced_suppressed
from digest.store.tables import DELIVERIES, SUBSCRIBERS


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    """A claimed delivery row: what a sender needs of it. A plain record, not a
    ``Delivery``: pydantic's ``model_construct`` took 8-15 us a row, most of a claim's
    Python time (200 rows: 2-5 ms, more than the statement)."""

    id: int
    subscriber_id: int
    attempts: int  # tries before this claim's (``start_attempt`` counts it)
    claim_token: str
    lease_until: datetime


@dataclass(frozen=True, slots=True)
class ClaimedSubscriber:
    """A claimed row's subscriber: what sending reads of them (``records.Reader``). A plain
    record, not a ``Subscriber``: SQLModel's ``model_construct`` of every column took a
    fifth of a sending worker's main thread (py-spy, bench/README.md, scale.py)."""

    id: int
    email: str
    name: str | None
    public_id: str
    topics: str
    timezone: str | None
    locale: str | None


_READER = (
    SUBSCRIBERS.c.id,
    SUBSCRIBERS.c.email,
    SUBSCRIBERS.c.name,
    SUBSCRIBERS.c.public_id,
    SUBSCRIBERS.c.topics,
    SUBSCRIBERS.c.timezone,
    SUBSCRIBERS.c.locale,
)

_CLAIMED = (
    DELIVERIES.c.id,
    DELIVERIES.c.subscriber_id,
    DELIVERIES.c.attempts,
    DELIVERIES.c.claim_token,
    DELIVERIES.c.lease_until,
)


def _picked() -> CTE:
    """The rows a claim takes: up to ``limit`` pending rows of active subscribers of the
    edition, in id order, locked ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite has one
    writer), MATERIALIZED so the planner runs the pick once, not once per row."""
    return (
        core_select(DELIVERIES.c.id)
        .join(SUBSCRIBERS, SUBSCRIBERS.c.id == DELIVERIES.c.subscriber_id)
        .where(
            DELIVERIES.c.edition_id == bindparam("claim_edition"),
            in_state(DeliveryStatus.PENDING),  # a literal: the partial index, prepared too
            SUBSCRIBERS.c.status == SubscriberStatus.ACTIVE,
        )
        .order_by(DELIVERIES.c.id)
        .limit(bindparam("claim_limit"))
        .with_for_update(skip_locked=True, of=DELIVERIES)
        .cte("picked")
        .prefix_with("MATERIALIZED")
    )


def claim_statement(with_subscribers: bool) -> Update:
    """The claim: the picked rows marked sending under a new token and lease, returned.

    ``with_subscribers`` (PostgreSQL): each row's subscriber returned beside it, joined in
    the UPDATE's FROM. SQLite's RETURNING sees only the updated table: its subscribers are
    read by a second query in the same transaction. The attempt is not counted here: a
    row claimed ahead and never handed to the transport (its sender killed meanwhile) was
    not tried (``start_attempt`` counts it when its batch goes out).
    """
    picked = _picked()
    claim = (
        update(DELIVERIES)
        .where(DELIVERIES.c.id == picked.c.id)
        .values(
            status=DeliveryStatus.SENDING,
            updated_at=bindparam("claim_now", type_=UTCDateTime()),
            lease_until=bindparam("claim_until", type_=UTCDateTime()),
            claim_token=bindparam("claim_token_new"),
        )
    )
    if not with_subscribers:
        return claim.returning(*_CLAIMED)
    return claim.where(SUBSCRIBERS.c.id == DELIVERIES.c.subscriber_id).returning(
        *_CLAIMED, *(c.label(f"subscriber_{c.name}") for c in _READER)
    )


_CLAIM_JOINED = claim_statement(with_subscribers=True)
_CLAIM = claim_statement(with_subscribers=False)
# A batch's results on PostgreSQL: one statement, the rows' values as arrays (unnest), in
# autocommit. As 500 UPDATEs through executemany it was as much of a worker's CPU as
# building the messages, and each statement the server's work too (on the same 2 cores).
_FINISH_PG = text(
    "UPDATE deliveries AS d SET status = v.status, error = v.error, "
    "message_id = v.message_id, updated_at = :now, "
    "sent_at = CASE WHEN v.status = :sent THEN CAST(:now AS timestamp) END, "
    "retry_at = v.retry_at, lease_until = NULL "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:errors AS text[]), "
    "CAST(:message_ids AS text[]), CAST(:retry_ats AS timestamp[])) "
    "AS v(id, status, error, message_id, retry_at) "
    "WHERE d.id = v.id AND d.status = :sending AND d.claim_token = :token"
).bindparams(bindparam("now", type_=UTCDateTime()))
_NAIVE_UTC = UTCDateTime()

_SUBSCRIBERS_OF = core_select(*_READER).where(
    SUBSCRIBERS.c.id.in_(bindparam("claimed_ids", expanding=True))
)


def claim_parameters(
    edition_id: int, limit: int, lease_seconds: float, token: str, now: datetime
) -> dict[str, Any]:
    """The claim statement's parameters at ``now`` (the bench's EXPLAIN uses them too)."""
    return {
        "claim_edition": edition_id,
        "claim_limit": limit,
        "claim_now": now,
        "claim_until": now + timedelta(seconds=lease_seconds),
        "claim_token_new": token,
    }


class ClaimQueries(StoreBase):
    """The claim and what follows it, for every sender (``Store`` inherits them)."""

    def claim_deliveries(
        self, edition_id: int, limit: int, lease_seconds: float = 300.0
    ) -> list[tuple[ClaimedRow, ClaimedSubscriber]]:
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
        claim carries one new random ``claim_token``: counting the attempt, renewing,
        finishing and releasing them need it. An empty answer means "nothing claimable
        now", not "finished": rows may be locked by another claim at this moment (see
        ``outbox_state``).
        """
        token = secrets.token_hex(16)
        parameters = claim_parameters(edition_id, limit, lease_seconds, token, self.clock.now())
        if self.engine.dialect.name == "postgresql":
            with self.engine.connect() as connection:
                rows = (
                    connection.execution_options(isolation_level="AUTOCOMMIT")
                    .execute(_CLAIM_JOINED, parameters)
                    .all()
                )
            split = len(_CLAIMED)
            return _in_order(
                [(ClaimedRow(*row[:split]), ClaimedSubscriber(*row[split:])) for row in rows]
            )
        with self.engine.begin() as connection:
            rows = connection.execute(_CLAIM, parameters).all()
            return _with_subscribers(connection, rows) if rows else []

    def start_attempt(self, claim_token: str) -> set[int]:
        """Count one attempt on every row the claim still holds, as its batch goes out;
        the ids of those rows (a row not among them was taken by another sender after the
        lease ran out, and must not go out from here).

        Counted here, not at the claim: a batch claimed ahead (while the one before is on
        the wire) whose sender dies before handing it over was never tried, and shows no
        attempt when its lease runs out and another sender takes it.
        """
        with self.engine.begin() as connection:
            rows = connection.execute(
                update(DELIVERIES)
                .where(held_by(claim_token))
                .values(attempts=DELIVERIES.c.attempts + 1, updated_at=self.clock.now())
                .returning(DELIVERIES.c.id)
            )
            return {int(row_id) for (row_id,) in rows}

    def recorded_under(self, claim_token: str, delivery_ids: Sequence[int]) -> int:
        """How many of ``delivery_ids`` are recorded under this claim already (by a replay
        of its journal entry, another process on this machine): not another sender's."""
        query = (
            core_select(func.count())
            .select_from(DELIVERIES)
            .where(
                DELIVERIES.c.id.in_(list(delivery_ids)),
                DELIVERIES.c.claim_token == claim_token,
                DELIVERIES.c.status != DeliveryStatus.SENDING,
            )
        )
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar() or 0)

    def renew_lease(self, claim_token: str, lease_seconds: float) -> int:
        """Extend the lease of the claim's rows still in flight; count the rows still held.

        A sender renews while its batch is out, so a slow batch is never taken by another
        sender as if its sender had died; fewer rows than claimed means some were.
        """
        now = self.clock.now()
        with self.engine.begin() as connection:
            result = connection.execute(
                update(DELIVERIES)
                .where(held_by(claim_token))
                .values(lease_until=now + timedelta(seconds=lease_seconds), updated_at=now)
            )
            return int(result.rowcount or 0)

    def finish_deliveries(
        self,
        results: Sequence[tuple[int, str, str, str | None]],
        claim_token: str,
        retry_at: Mapping[int, datetime] | None = None,
        bounced: Sequence[int] = (),
    ) -> int:
        """Record a batch of (delivery id, status, detail, Message-ID) in one transaction;
        ``retry_at`` says when each deferred row may be tried again. Count the rows recorded.

        Only rows this claim still holds are written: a row whose lease ran out and which
        another sender took belongs to that sender now, and its outcome is theirs to record.
        The readers of the ``bounced`` deliveries (hard bounces) are suppressed in the same
        transaction, as the journal's replay does: the record and the suppression go through
        or fail together (one try to repeat, one lock to wait for), and a record that went
        through has no bounce left to lose.
        """
        if not results:
            return 0
        now = self.clock.now()
        if self.engine.dialect.name == "postgresql":
            return self._finish_in_one(results, claim_token, retry_at or {}, now, bounced)
        rows = finished_rows(results, retry_at or {}, now, sent_at=now)
        with self.engine.begin() as connection:
            result = connection.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id == bindparam("row_id"), held_by(claim_token))
                .values(FINISHED),
                rows,
            )
            bounced_suppressed(connection, bounced, now)
            return int(result.rowcount or 0)

    def _finish_in_one(
        self,
        results: Sequence[tuple[int, str, str, str | None]],
        claim_token: str,
        retry_at: Mapping[int, datetime],
        now: datetime,
        bounced: Sequence[int],
    ) -> int:
        """``finish_deliveries`` on PostgreSQL: one UPDATE joined to the results as arrays
        (in a transaction with the suppression when there are bounces, else autocommit)."""
        parameters = {
            "ids": [r[0] for r in results],
            "statuses": [str(r[1]) for r in results],  # str: psycopg sends an Enum's name
            "errors": [r[2] or None for r in results],
            "message_ids": [r[3] for r in results],
            "retry_ats": [
                _NAIVE_UTC.process_bind_param(retry_at.get(r[0]), self.engine.dialect)
                for r in results
            ],
            "now": now,
            "sent": str(DeliveryStatus.SENT),
            "sending": str(DeliveryStatus.SENDING),
            "token": claim_token,
        }
        if bounced:
            with self.engine.begin() as connection:
                result = connection.execute(_FINISH_PG, parameters)
                bounced_suppressed(connection, bounced, now)
                return int(result.rowcount or 0)
        with self.engine.connect() as connection:
            result = connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                _FINISH_PG, parameters
            )
            return int(result.rowcount or 0)

    def release_deliveries(self, delivery_ids: Sequence[int], claim_token: str) -> None:
        """Put claimed rows that were never handed to the transport back to pending."""
        if not delivery_ids:
            return
        with self.engine.begin() as connection:
            connection.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.id.in_(list(delivery_ids)), held_by(claim_token))
                .values(
                    status=DeliveryStatus.PENDING,
                    lease_until=None,
                    claim_token=None,
                    updated_at=self.clock.now(),
                )
            )


def _in_order(
    claimed: list[tuple[ClaimedRow, ClaimedSubscriber]],
) -> list[tuple[ClaimedRow, ClaimedSubscriber]]:
    """Claimed rows in id order (RETURNING gives them in the order the UPDATE met them)."""
    return sorted(claimed, key=lambda pair: pair[0].id)


def _with_subscribers(
    connection: Connection, rows: Sequence[Any]
) -> list[tuple[ClaimedRow, ClaimedSubscriber]]:
    """Claimed delivery rows (SQLite), in id order, each with its subscriber (one query)."""
    ids = sorted({row.subscriber_id for row in rows})
    people = {
        person.id: ClaimedSubscriber(*person)
        for person in connection.execute(_SUBSCRIBERS_OF, {"claimed_ids": ids})
    }
    return _in_order([(ClaimedRow(*row), people[row.subscriber_id]) for row in rows])


# What recording a row writes, as bound values (``finished_rows`` binds them): the record
# of a batch and the replay of its journal (``store.journal_replay``) write the same row.
FINISHED: dict[str, Any] = {
    "status": bindparam("status"),
    "error": bindparam("error"),
    "message_id": bindparam("message_id"),
    "updated_at": bindparam("updated_at"),
    "sent_at": bindparam("sent_at"),
    "retry_at": bindparam("retry_at"),
    "lease_until": None,
}


def finished_rows(
    results: Sequence[tuple[int, str, str, str | None]],
    retry_at: Mapping[int, datetime],
    updated_at: datetime,
    sent_at: datetime,
) -> list[dict[str, Any]]:
    """Each result's bound values for ``FINISHED`` (``row_id``: the row it goes to); a row
    sent is stamped ``sent_at``, the others not."""
    return [
        {
            "row_id": delivery_id,
            "status": status,
            "error": detail or None,
            "message_id": message_id,
            "updated_at": updated_at,
            "sent_at": sent_at if status == DeliveryStatus.SENT else None,
            "retry_at": retry_at.get(delivery_id),
        }
        for delivery_id, status, detail, message_id in results
    ]
