"""PostgreSQL's own means, for many machines on one database: a connection of its own
(the leader's lock, a worker's LISTEN), with TCP keepalives so a dead peer or a cut
network is noticed in seconds, not hours; and NOTIFY when rows are queued.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

CHANNEL = "digest_outbox"  # NOTIFY'd when delivery rows become pending

# The kernel probes an idle connection after 5 s, every 2 s, and gives up after 3 misses:
# a lock session whose peer is gone is noticed within about 11 s, inside the 15 s a
# standby has to take over.
KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,  # ms: unacknowledged writes end the connection too
}


def is_postgresql(engine: Engine) -> bool:
    """Whether the engine is PostgreSQL (SQLite has none of this: one writer, one host)."""
    return engine.url.get_backend_name() == "postgresql"


def dedicated_connection(engine: Engine) -> Any:
    """A psycopg connection of its own (not from the pool), autocommit, with keepalives."""
    import psycopg

    url = engine.url.set(drivername="postgresql")
    return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True, **KEEPALIVES)


def notify_outbox(connection: Connection) -> None:
    """Wake the workers listening (sent when the transaction commits); nothing on SQLite."""
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"NOTIFY {CHANNEL}"))


class OutboxListener:
    """Waits for NOTIFY on the outbox channel (PostgreSQL), so an idle worker starts as
    soon as rows are queued; ``wait`` returns on a notification or after ``timeout``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.connection: Any = None

    def wait(self, timeout: float) -> bool:
        """Block until a notification (True) or ``timeout`` seconds (False). Call it in a
        thread. A lost connection is opened again on the next wait; meanwhile the caller's
        poll goes on."""
        import time

        if not is_postgresql(self.engine):
            time.sleep(timeout)
            return False
        try:
            if self.connection is None or self.connection.closed:
                self.connection = dedicated_connection(self.engine)
                self.connection.execute(f"LISTEN {CHANNEL}")
            got = list(self.connection.notifies(timeout=timeout, stop_after=1))
            return bool(got)
        except Exception:  # the database restarted or the network went: poll, reconnect
            self.close()
            time.sleep(timeout)
            return False

    def close(self) -> None:
        """Close the listening connection."""
        if self.connection is not None:
            try:
                self.connection.close()
            finally:
                self.connection = None
