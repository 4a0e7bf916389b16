"""The outbox's row conditions, named once: the edition, outbox and requeue queries share them."""

from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import and_, exists, literal_column, or_, text
from sqlalchemy.sql.elements import BindParameter, ColumnElement

from digest.states import (
    CLAIM_PATH_STATES,
    CLAIMABLE_DELIVERY_STATES,
    QUEUED_DELIVERY_STATES,
    DeliveryStatus,
    sql_in,
    sql_literal,
    sql_not_in,
)
from digest.store.tables import DELIVERIES, EDITIONS


def in_state(*states: DeliveryStatus) -> ColumnElement[bool]:
    """``status = 'sent'`` (or ``IN``), the statuses written as SQL literals, not bound.

    A partial index is used only when the query's WHERE implies the index's: PostgreSQL
    proves it for a literal but not for a parameter in a generic plan (the one a prepared
    statement settles on), nor SQLite ever. The values are the enum's, never input.
    """
    values: list[ColumnElement[str]] = [
        literal_column(sql_literal(state.value)) for state in states
    ]
    if len(values) == 1:
        return DELIVERIES.c.status == values[0]
    return DELIVERIES.c.status.in_(values)


# The partial indexes' own WHERE terms, as the queries repeat them (``claimable``,
# ``off_claim_path``): the same text for SQLite and PostgreSQL, so written once.
_CLAIMABLE_TERM = text(sql_in("deliveries.status", CLAIMABLE_DELIVERY_STATES))
_OFF_CLAIM_PATH_TERM = text(sql_not_in("deliveries.status", CLAIM_PATH_STATES))


# Cached per set of states, as ``off_claim_path``: an SQL expression is never changed in
# place (``where``, ``and_`` build new ones), so one may serve every statement.
@functools.cache
def claimable(*states: DeliveryStatus) -> ColumnElement[bool]:
    """Rows in these claimable states, found through the partial index of claimable rows
    (``ix_deliveries_claimable``) even without an edition: the index's own condition is
    repeated, since SQLite matches a partial index only to a query that names its WHERE
    term as such (PostgreSQL would prove it from the literal statuses)."""
    assert set(states) <= set(CLAIMABLE_DELIVERY_STATES)
    return and_(_CLAIMABLE_TERM, in_state(*states))


@functools.cache
def off_claim_path(*states: DeliveryStatus) -> ColumnElement[bool]:
    """Rows in these states, none pending or claimed, found through the partial index of
    rows off the claim's path (``ix_deliveries_status_sent_at_off_claim``): its condition
    repeated for SQLite's sake, as in ``claimable``."""
    assert not set(states) & set(CLAIM_PATH_STATES)
    return and_(_OFF_CLAIM_PATH_TERM, in_state(*states))


def held_by(claim_token: str | BindParameter[str]) -> ColumnElement[bool]:
    """Rows still in flight under this claim (not reclaimed, not taken by another sender);
    the token as a value or a bound parameter (a statement run for many rows).

    Through the claimable rows' index: no index of all rows starts with the status, and
    the claim token has none (a claim would have to write it)."""
    return and_(claimable(DeliveryStatus.SENDING), DELIVERIES.c.claim_token == claim_token)


# A row still owed (pending, claimed, deferred or paused): its edition is still being sent.
# Named as the list of those states, not `NOT IN` the final ones, so that with an edition
# the (edition_id, status) index reads only its owed rows; `NOT IN` read every sent row of
# every edition (a year of a 100,000-reader list: some 37 million).
STILL_OWED = in_state(*QUEUED_DELIVERY_STATES)
# The edition (of the enclosing query's editions row) has a row still owed: its send is not
# over, and what it renders (its views, the editions before it) stays.
BEING_SENT = exists().where(DELIVERIES.c.edition_id == EDITIONS.c.id, STILL_OWED)


def went_out() -> ColumnElement[bool]:
    """A row whose message went out (sent), or may be going out now (claimed)."""
    return DELIVERIES.c.status.in_((DeliveryStatus.SENT, DeliveryStatus.SENDING))


def unfinished(due_only: bool, now: datetime) -> ColumnElement[bool]:
    """Rows a run still has to send: pending, deferred (due ones only, if ``due_only``), or
    claimed by a sender whose lease ran out; without ``due_only`` paused ones too (they are
    not sent until `digest retry`, but an edition too old to send fails them)."""
    if due_only:
        return or_(
            DELIVERIES.c.status == DeliveryStatus.PENDING,
            and_(DELIVERIES.c.status == DeliveryStatus.DEFERRED, due(now)),
            orphaned(now),
        )
    return or_(
        DELIVERIES.c.status.in_(
            (DeliveryStatus.PENDING, DeliveryStatus.DEFERRED, DeliveryStatus.PAUSED)
        ),
        orphaned(now),
    )


def due(now: datetime) -> ColumnElement[bool]:
    """A deferred row's retry time has come (or it never had one)."""
    return or_(DELIVERIES.c.retry_at.is_(None), DELIVERIES.c.retry_at <= now)


def orphaned(now: datetime) -> ColumnElement[bool]:
    """Claimed by a sender whose lease ran out: it died, or stalled past it."""
    return and_(
        DELIVERIES.c.status == DeliveryStatus.SENDING,
        or_(DELIVERIES.c.lease_until.is_(None), DELIVERIES.c.lease_until < now),
    )
