"""The subscribers' status history: every change of status, who or what made it, when.

A mixin of ``Store``; all SQL stays in ``store/``. Every store method that sets a status
writes its line through ``record_status`` in its own transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from digest.store.base import StoreBase, saved_id
from digest.store.tables import SUBSCRIBER_EVENTS, Subscriber, SubscriberEvent


class StatusLogQueries(StoreBase):
    """The status-history reads (``Store`` inherits them)."""

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


def record_status(
    into: Session | Connection,
    changes: Sequence[tuple[int, str | None, str]],
    by: str,
    at: datetime,
) -> None:
    """Write status changes, (subscriber id, before, after), to the subscribers' history in
    the caller's transaction: every store method that sets a status calls this, so no change
    goes unrecorded. A status before of None means the row was made then."""
    rows = [
        {"subscriber_id": i, "from_status": before, "to_status": after, "at": at, "by": by}
        for i, before, after in changes
    ]
    if not rows:
        return
    if isinstance(into, Session):
        into.add_all(SubscriberEvent.model_validate(row) for row in rows)
    else:
        into.execute(insert(SUBSCRIBER_EVENTS), rows)


def record_change(s: Session, row: Subscriber, before: str | None, by: str, at: datetime) -> None:
    """One row's change at ``at``, the row in the session (flushed, so a new one has its id)."""
    record_status(s, [(saved_id(row), before, row.status)], by, at)
