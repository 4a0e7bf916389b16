"""Workers' heartbeats and the sending limits shared by every sender on the database.

A mixin of ``Store``; all SQL stays in ``store/``.
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, update
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
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
        self, name: str, rate: int, period: float, wanted: int, now: float | None = None
    ) -> tuple[int, float]:
        """Take up to ``wanted`` of the ``rate`` messages the current window of ``period``
        seconds allows, for every sender on the database at once; return how many were
        granted and, when none, the seconds until the next window.

        Windows are aligned to the clock (a per-second limit's window is one wall-clock
        second), so the limit holds for sends counted by second. The row is locked by the
        first UPDATE (on SQLite: the write lock), so two senders never take the same room.
        """
        table = SQLModel.metadata.tables["rate_windows"]
        now = time.time() if now is None else now
        start = math.floor(now / period) * period
        with self.engine.begin() as connection:
            # A new window: reset the row (which locks it). Else lock it as it stands.
            connection.execute(
                update(table)
                .where(table.c.name == name, table.c.window_start < start)
                .values(window_start=start, used=0)
            )
            pick = core_select(table.c.used).where(table.c.name == name).with_for_update()
            used = connection.execute(pick).scalar()
            if used is None:  # the limit's first use on this database
                try:
                    with connection.begin_nested():
                        connection.execute(
                            insert(table).values(name=name, window_start=start, used=0)
                        )
                except IntegrityError:
                    pass  # another sender made it first
                used = connection.execute(pick).scalar_one()
            granted = max(0, min(wanted, rate - int(used)))
            if granted:
                connection.execute(
                    update(table).where(table.c.name == name).values(used=table.c.used + granted)
                )
        return granted, 0.0 if granted else max(0.0, start + period - now)

    def give_tokens(self, name: str, period: float, count: int) -> None:
        """Return tokens taken for messages that did not go, if their window still runs."""
        if count <= 0:
            return
        table = SQLModel.metadata.tables["rate_windows"]
        start = math.floor(time.time() / period) * period
        with self.engine.begin() as connection:
            connection.execute(
                update(table)
                .where(table.c.name == name, table.c.window_start == start, table.c.used >= count)
                .values(used=table.c.used - count)
            )


def seen_ago(last_seen: datetime, now: datetime | None = None) -> float:
    """Seconds since a heartbeat."""
    return ((now or utcnow()) - last_seen).total_seconds()
