"""Workers' heartbeats and the sending limits shared by every sender on the database.

A mixin of ``Store``; all SQL stays in ``store/``.
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, update
from sqlmodel import col, select

from digest.states import WorkerRole, WorkerState
from digest.store.base import StoreBase
from digest.store.tables import WORKERS, Worker, utcnow

# A heartbeat row not refreshed for this long names a process that stopped without saying
# so (kill -9, a lost machine); after a day it is forgotten.
FORGET_AFTER = timedelta(days=1)


def this_process(role: WorkerRole, state: WorkerState) -> Worker:
    """The heartbeat row of the running process (a worker or a scheduler): host, pid and a
    random part, so a restarted process with a reused pid is a new row."""
    host, pid, now = socket.gethostname(), os.getpid(), utcnow()
    return Worker(
        id=f"{host}:{pid}:{secrets.token_hex(4)}",
        role=role,
        host=host,
        pid=pid,
        started_at=now,
        last_seen=now,
        state=state,
    )


class WorkerQueries(StoreBase):
    """Heartbeats of workers and schedulers, and the shared rate windows."""

    def register_worker(self, worker: Worker) -> None:
        """Write a new process's heartbeat row; forget rows silent for a day."""
        with self.engine.begin() as connection:
            connection.execute(delete(WORKERS).where(WORKERS.c.last_seen < utcnow() - FORGET_AFTER))
            connection.execute(insert(WORKERS).values(**worker.model_dump()))

    def beat(self, worker_id: str, sent: int, rate: float, state: str) -> None:
        """Refresh a process's heartbeat: last seen now, what it sent, its rate and state."""
        with self.engine.begin() as connection:
            connection.execute(
                update(WORKERS)
                .where(WORKERS.c.id == worker_id)
                .values(last_seen=utcnow(), sent=sent, rate=rate, state=state)
            )

    def forget_worker(self, worker_id: str) -> None:
        """A process that stops cleanly takes its row away."""
        with self.engine.begin() as connection:
            connection.execute(delete(WORKERS).where(WORKERS.c.id == worker_id))

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


def seen_ago(last_seen: datetime, now: datetime | None = None) -> float:
    """Seconds since a heartbeat."""
    return ((now or utcnow()) - last_seen).total_seconds()
