"""The sending limits: windows counted over the sends recorded, and the token buckets
shared by every sender on the database.

A mixin of ``Store``; all SQL stays in ``store/``.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, literal, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from digest.clock import Clock
from digest.states import DeliveryStatus
from digest.store.base import StoreBase
from digest.store.delivery_rows import claimable, off_claim_path
from digest.store.tables import DELIVERIES, RATE_WINDOWS


class RateQueries(StoreBase):
    """The limits' counts and token buckets (``Store`` inherits them)."""

    def sent_since(self, since: datetime) -> int:
        """Messages sent since then, over every edition, and those in flight now (claimed,
        lease running: they are going out, though not recorded yet), for the limits. A
        sender builds its next batch while one is on the wire, and a window counted without
        those would grant their room twice."""
        sent = core_select(func.count()).where(
            off_claim_path(DeliveryStatus.SENT), DELIVERIES.c.sent_at >= since
        )
        flying = core_select(func.count()).where(
            claimable(DeliveryStatus.SENDING), DELIVERIES.c.lease_until >= self.clock.now()
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
        now = now or self.clock.now()
        since = now - period
        sent = self.sent_since(since)
        if sent < limit:
            return limit - sent, 0.0
        query = (
            core_select(DELIVERIES.c.sent_at)
            .where(off_claim_path(DeliveryStatus.SENT), DELIVERIES.c.sent_at >= since)
            .order_by(DELIVERIES.c.sent_at)
            .offset(sent - limit)
            .limit(1)
        )
        with self.engine.connect() as connection:
            oldest = connection.execute(query).scalar()
        if oldest is None:  # sent since the count, or in flight: look again soon
            return 0, 1.0
        return 0, max(0.0, (oldest + period - now).total_seconds())

    def take_tokens(
        self, name: str, rate: int, period: float, burst: int, wanted: int
    ) -> tuple[int, float]:
        """Take up to ``wanted`` messages from the ``name`` limit (``rate`` a ``period``)
        for every sender on the database at once; return how many were granted and, when
        none, the seconds until one is.

        A token bucket in one row, refilled at the limit's rate and holding at most
        ``burst`` (a batch): in any period at most ``rate`` plus one batch go, however many
        workers ask. The row is locked while taken, and the time is the database's, so
        machines with clocks apart agree.
        """
        pick = (
            core_select(
                RATE_WINDOWS.c.tokens, RATE_WINDOWS.c.updated, _clock(self.engine, self.clock)
            )
            .where(RATE_WINDOWS.c.name == name)
            .with_for_update()
        )
        with self.engine.begin() as connection:
            row = connection.execute(pick).first()
            if row is None:  # the limit's first use on this database
                try:
                    with connection.begin_nested():
                        connection.execute(
                            insert(RATE_WINDOWS).values(name=name, tokens=float(burst), updated=0.0)
                        )
                except IntegrityError:
                    pass  # another sender made it first
                row = connection.execute(pick).one()
            tokens, updated, now = float(row[0]), float(row[1]), float(row[2])
            tokens = min(float(burst), tokens + max(0.0, now - updated) * rate / period)
            granted = max(0, min(wanted, math.floor(tokens)))
            connection.execute(
                update(RATE_WINDOWS)
                .where(RATE_WINDOWS.c.name == name)
                .values(tokens=tokens - granted, updated=now)
            )
        return granted, 0.0 if granted else (1 - (tokens - granted)) * period / rate

    def give_tokens(self, name: str, burst: int, count: int) -> None:
        """Return tokens taken for messages that did not go (never above ``burst``)."""
        if count <= 0:
            return
        with self.engine.begin() as connection:
            connection.execute(
                update(RATE_WINDOWS)
                .where(RATE_WINDOWS.c.name == name)
                .values(tokens=func.least(float(burst), RATE_WINDOWS.c.tokens + count))
                if self.engine.dialect.name == "postgresql"
                else update(RATE_WINDOWS)
                .where(RATE_WINDOWS.c.name == name)
                .values(tokens=func.min(float(burst), RATE_WINDOWS.c.tokens + count))
            )


def _clock(engine: Engine, clock: Clock) -> ColumnElement[Any]:
    """Now, in Unix seconds, by the database's clock (SQLite: the store's), so that every
    machine sharing a PostgreSQL window counts on one clock."""
    if engine.dialect.name == "postgresql":
        return func.extract("epoch", func.clock_timestamp())
    return literal(clock.now().timestamp())
