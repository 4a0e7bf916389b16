"""The outbox's row conditions, named once: the edition, outbox and requeue queries share them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_
from sqlalchemy.sql.elements import ColumnElement

from digest.states import DeliveryStatus
from digest.store.tables import DELIVERIES


def held_by(claim_token: str) -> ColumnElement[bool]:
    """Rows still in flight under this claim (not reclaimed, not taken by another sender)."""
    return and_(
        DELIVERIES.c.status == DeliveryStatus.SENDING, DELIVERIES.c.claim_token == claim_token
    )


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
