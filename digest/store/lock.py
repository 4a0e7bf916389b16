"""One scheduler leads per database.

SQLite: an exclusive ``flock`` on ``<database>.daemon.lock`` (released by the kernel when
the process dies, even by ``kill -9``); the file holds the owner's pid for the message; a
second `digest run` exits at once.
PostgreSQL: ``LeaderLock``, a session advisory lock on a connection of its own with TCP
keepalives, checked every few seconds; the other `digest run`s stand by and take it.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from digest.errors import DigestError, StoreError
from digest.store.pg import dedicated_connection

log = logging.getLogger("digest.schedule")

_ADVISORY_KEY = 7_311_991  # any fixed number: digest's daemon lock


@contextmanager
def daemon_lock(engine: Engine) -> Iterator[None]:
    """Hold the database's daemon lock, or raise DigestError naming who holds it."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            yield
            return
        with _file_lock(Path(url.database + ".daemon.lock")):
            yield
    elif url.get_backend_name() == "postgresql":
        with engine.connect() as connection:
            got = connection.execute(text(f"SELECT pg_try_advisory_lock({_ADVISORY_KEY})"))
            if not got.scalar():
                raise DigestError(
                    "another digest daemon is running on this database",
                    "stop it first (one daemon per database sends each edition once)",
                )
            try:
                yield
            finally:
                connection.execute(text(f"SELECT pg_advisory_unlock({_ADVISORY_KEY})"))
    else:
        yield


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    try:
        handle = path.open("a+")
    except OSError as exc:  # a read-only disk or folder: no job could write either
        raise StoreError(
            f"cannot open the daemon's lock file {path}: {exc.strerror or exc}",
            "the database's folder must be writable by the user digest runs as: SQLite "
            "writes the database, its -wal and -shm files and this lock beside it (a "
            "restore or a copy made as another user, or a disk mounted read-only, stops "
            "every job); fix it, then start the daemon again",
        ) from exc
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            raise DigestError(
                f"another digest daemon (pid {owner}) is running on this database",
                "stop it first (one daemon per database sends each edition once); "
                f"the lock is {path}",
            ) from exc
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock


def daemon_holder(engine: Engine) -> str | None:
    """Who holds the daemon lock ("pid N", or "a session" on PostgreSQL); None when no
    daemon runs on this database (or the backend has no lock to ask). For `digest status`:
    the lock is taken and given back at once, so asking never stops a daemon starting."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        path = Path(f"{url.database}.daemon.lock") if url.database else None
        if path is None or not path.exists():
            return None
        with path.open("r") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return f"pid {handle.read().strip() or 'unknown'}"
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None
    if url.get_backend_name() == "postgresql":
        with engine.connect() as connection:
            got = connection.execute(text(f"SELECT pg_try_advisory_lock({_ADVISORY_KEY})"))
            if not got.scalar():
                return "a database session"
            connection.execute(text(f"SELECT pg_advisory_unlock({_ADVISORY_KEY})"))
    return None


class LeaderLock:
    """The scheduler's lead on PostgreSQL: the session advisory lock, held by a connection
    of its own with TCP keepalives (``pg.dedicated_connection``), and checked again every
    few seconds: PostgreSQL ends a session (pg_terminate_backend, a restart, a network cut
    the keepalives find) and its lock with it, and the leader must learn that before a
    standby leads beside it.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.connection: Any = None

    def try_take(self) -> bool:
        """Take the lead if nobody holds it; False (and no error) when another does or the
        database cannot be reached."""
        return self._ask(
            "SELECT pg_try_advisory_lock(%s)",
            partial(log.warning, "could not ask for the scheduler's lead: %s"),
            connect=True,
        )

    def still_held(self) -> bool:
        """Whether this session still holds the lock (False when the session is gone)."""
        if self.connection is None:
            return False
        return self._ask(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND pid = pg_backend_pid() AND objid = %s",
            partial(log.error, "the scheduler's lock session failed: %s"),
        )

    def _ask(self, sql: str, report: Callable[[Exception], None], connect: bool = False) -> bool:
        """A yes-or-no question about the lock on its own session; a failure is reported,
        drops the session (the lock went with it) and answers no."""
        try:
            if connect and (self.connection is None or self.connection.closed):
                self.connection = dedicated_connection(self.engine)
            row = self.connection.execute(sql, (_ADVISORY_KEY,)).fetchone()
            return bool(row and row[0])
        except Exception as exc:
            report(exc)
            self._drop()
            return False

    def release(self) -> None:
        """Give the lead back (closing the session releases it too)."""
        if self.connection is not None and not self.connection.closed:
            with suppress(Exception):  # the session is gone, and the lock with it
                self.connection.execute("SELECT pg_advisory_unlock(%s)", (_ADVISORY_KEY,))
        self._drop()

    def _drop(self) -> None:
        if self.connection is not None:
            with suppress(Exception):
                self.connection.close()
            self.connection = None
