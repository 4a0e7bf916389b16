"""Every state a row or a result can be in, named once.

Each column that holds a state has its type here, with exactly the values the store writes;
migration 0017 puts a CHECK constraint on each, so a misspelt status fails at the write
instead of leaving a row no query finds. A ``StrEnum`` member equals its string, so code
that still compares with the literal keeps working, and a row read back compares equal to
the member. The groupings the code asks about (who has left, which rows are done) are
defined here too, once.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class DeliveryStatus(StrEnum):
    """A delivery row (one edition x one subscriber): ``deliveries.status``.

    pending -> sending (claimed, until its lease runs out) -> sent | deferred (a 4xx: tried
    again after its wait) | failed (permanent, with the server's words; a hard bounce too) |
    skipped (nothing of the edition was for them: decided before sending); pending ->
    paused (the error budget stopped the edition, until `digest retry`); pending or paused
    -> suppressed (the subscriber left first).
    """

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    PAUSED = "paused"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    SKIPPED = "skipped"


# A run never sends a row in one of these again (`digest retry` re-queues failed ones when
# asked); every other row is still owed.
FINAL_DELIVERY_STATES = (
    DeliveryStatus.SENT,
    DeliveryStatus.FAILED,
    DeliveryStatus.SUPPRESSED,
    DeliveryStatus.SKIPPED,
)
# The rows still owed, in flight or held (every state but the final ones): what /metrics
# calls the queue. A query asks for these (`status IN`), never `NOT IN` the final ones:
# the (edition_id, status) index then reads an edition's few owed rows, where `NOT IN`
# reads every row of every edition (store.delivery_rows.STILL_OWED).
QUEUED_DELIVERY_STATES = tuple(s for s in DeliveryStatus if s not in FINAL_DELIVERY_STATES)
# The rows a sender may still claim (now, after a retry wait) or that are in flight: the
# partial index of claimable rows holds exactly these.
CLAIMABLE_DELIVERY_STATES = (
    DeliveryStatus.PENDING,
    DeliveryStatus.DEFERRED,
    DeliveryStatus.SENDING,
)
# The states a claim moves a row between (pending -> sending). An index that leaves them out
# (partial) is not written by a claim: PostgreSQL adds no entry for a new row version
# outside a partial index, and a claim changes the status, so every other index of
# deliveries takes one entry a row.
CLAIM_PATH_STATES = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)


class SendStatus(StrEnum):
    """What a transport said about one message (``records.SendResult.status``).

    Not stored as such: a bounce is recorded as a failed row (and suppresses the
    subscriber); the others are recorded as the delivery status of the same name.
    """

    SENT = "sent"
    DEFERRED = "deferred"  # a 4xx: tried again after its wait
    FAILED = "failed"  # a 5xx
    BOUNCED = "bounced"  # a 5.1.x: the address is dead
    SKIPPED = "skipped"  # nothing of the edition is in their topics: decided before sending


class StillDoubted(StrEnum):
    """Why a reader refused as unknown again on a later day is still not suppressed (the
    rule: ``digest.deliver.doubts``). Not a column of its own: the value is the words the
    failed row's reason, the run's output and `digest status` use, and status finds the
    rows by them."""

    NO_ONE_ACCEPTED = "refused as unknown again while the server accepted no one"
    TOO_MANY_REFUSED = "refused as unknown again along with too many others at once"


class SubscriberStatus(StrEnum):
    """A subscriber: ``subscribers.status`` and their history's ``subscriber_events``.

    The order is the one the CLI, the CSV import and the console offer them in.
    """

    ACTIVE = "active"
    PENDING = "pending"  # signed up, not confirmed yet
    PAUSED = "paused"  # asked for a break; keeps their place
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


# Every subscriber status, as the plain strings a user types: an export of everyone imports
# as it was. Plain, because click.Choice offers an Enum's member names (ACTIVE), not values.
SUBSCRIBER_STATUSES: tuple[str, ...] = tuple(status.value for status in SubscriberStatus)
# The statuses in which someone has ended their subscription, or their mail server has
# (bounced) or they reported the mail (complained). Nothing but their own request brings
# them back; every other status (pending, active, paused) can still end in one of these.
LEFT = (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED)


class SourceStatus(StrEnum):
    """A stored source: ``sources.status``."""

    ACTIVE = "active"
    GONE = "gone"  # answered 410: not fetched again until its configured URL changes


class FetchStatus(StrEnum):
    """How one source fared in one gather (its report, not stored)."""

    OK = "ok"
    ERROR = "error"
    GONE = "gone"  # answered 410
    SKIPPED = "skipped"  # waiting until its next attempt


class WorkerRole(StrEnum):
    """A heartbeat row's process: ``workers.role``."""

    WORKER = "worker"
    SCHEDULER = "scheduler"


class WorkerState(StrEnum):
    """What a process says it is doing: ``workers.state`` ('' until it first says)."""

    IDLE = "idle"  # a worker with nothing to claim
    WAITING = "waiting"  # a worker held back by a sending limit
    SENDING = "sending"
    STOPPING = "stopping"
    LEADING = "leading"  # the scheduler that gathers, builds and queues
    STANDBY = "standby"  # a scheduler waiting to take over


def sql_literal(value: str) -> str:
    """``'a'``: one of this module's values as an SQL string literal. The values are this
    module's own, never input, so quoting them is enough."""
    return "'" + value.replace("'", "''") + "'"


def sql_in(column: str, values: Iterable[str]) -> str:
    """``column IN ('a', 'b')``: the SQL of a CHECK constraint or a partial index's WHERE."""
    return f"{column} IN ({_sql_list(values)})"


def sql_not_in(column: str, values: Iterable[str]) -> str:
    """``column NOT IN ('a', 'b')``: a partial index's WHERE."""
    return f"{column} NOT IN ({_sql_list(values)})"


def _sql_list(values: Iterable[str]) -> str:
    return ", ".join(sql_literal(value) for value in values)
