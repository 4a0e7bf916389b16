"""Workers' heartbeats and the sending limits shared by every sender on the database.

A mixin of ``Store``; all SQL stays in ``store/``.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, literal, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import SQLModel, col, select

from digest.store.base import StoreBase
from digest.store.tables import Worker, utcnow

# A heartbeat row not refreshed for this long names a process that stopped without saying
# so (kill -9, a lost machine); after a day it is forgotten.
FORGET_AFTER = timedelta(days=1)


class WorkerQueries(StoreBase):
    """Heartbeats of workers and schedulers, and the shared rate windows."""

    def register_worker(self, worker: Worker) -> None:
        """Write a new process's heartbeat row; forget rows silent for a day."""
        workers = SQLModel.metadata.tables["workers"]
        with self.engine.begin() as connection:
            connection.execute(delete(workers).where(workers.c.last_seen < utcnow() - FORGET_AFTER))
            connection.execute(insert(workers).values(**worker.model_dump()))

    def beat(self, worker_id: str, sent: int, rate: float, state: str) -> None:
        """Refresh a process's heartbeat: last seen now, what it sent, its rate and state."""
        workers = SQLModel.metadata.tables["workers"]
        with self.engine.begin() as connection:
            connection.execute(
                update(workers)
                .where(workers.c.id == worker_id)
                .values(last_seen=utcnow(), sent=sent, rate=rate, state=state)
            )

    def forget_worker(self, worker_id: str) -> None:
        """A process that stops cleanly takes its row away."""
        workers = SQLModel.metadata.tables["workers"]
        with self.engine.begin() as connection:
            connection.execute(delete(workers).where(workers.c.id == worker_id))

    def workers(self) -> list[Worker]:
        """Every process with a heartbeat row, schedulers first, then by host and pid."""
        with self.session() as s:
            return list(
                s.exec(
                    select(Worker).order_by(
                        col(Worker.role).desc(), col(Worker.host), col(Worker.pid)
                    )
                )
            )

    def live_workers(self, within: float) -> int:
        """How many workers beat within the last ``within`` seconds."""
        with self.session() as s:
            since = utcnow() - timedelta(seconds=within)
            rows = s.exec(
                select(Worker.id).where(Worker.role == "worker", col(Worker.last_seen) >= since)
            )
            return len(list(rows))

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
        table = SQLModel.metadata.tables["rate_windows"]
        pick = (
            core_select(table.c.tokens, table.c.updated, _clock(self.engine))
            .where(table.c.name == name)
            .with_for_update()
        )
        with self.engine.begin() as connection:
            row = connection.execute(pick).first()
            if row is None:  # the limit's first use on this database
                try:
                    with connection.begin_nested():
                        connection.execute(
                            insert(table).values(name=name, tokens=float(burst), updated=0.0)
                        )
                except IntegrityError:
                    pass  # another sender made it first
                row = connection.execute(pick).one()
            tokens, updated, now = float(row[0]), float(row[1]), float(row[2])
            tokens = min(float(burst), tokens + max(0.0, now - updated) * rate / period)
            granted = max(0, min(wanted, math.floor(tokens)))
            connection.execute(
                update(table)
                .where(table.c.name == name)
                .values(tokens=tokens - granted, updated=now)
            )
        return granted, 0.0 if granted else (1 - (tokens - granted)) * period / rate

    def give_tokens(self, name: str, burst: int, count: int) -> None:
        """Return tokens taken for messages that did not go (never above ``burst``)."""
        if count <= 0:
            return
        table = SQLModel.metadata.tables["rate_windows"]
        with self.engine.begin() as connection:
            connection.execute(
                update(table)
                .where(table.c.name == name)
                .values(tokens=func.least(float(burst), table.c.tokens + count))
                if self.engine.dialect.name == "postgresql"
                else update(table)
                .where(table.c.name == name)
                .values(tokens=func.min(float(burst), table.c.tokens + count))
            )


def _clock(engine: Engine) -> ColumnElement[Any]:
    """Now, in Unix seconds, by the database's clock (SQLite: this machine's)."""
    if engine.dialect.name == "postgresql":
        return func.extract("epoch", func.clock_timestamp())
    return literal(time.time())


def seen_ago(last_seen: datetime, now: datetime | None = None) -> float:
    """Seconds since a heartbeat."""
    return ((now or utcnow()) - last_seen).total_seconds()
