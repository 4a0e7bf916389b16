"""One daemon per database: a second `digest run` on the same database exits at once.

SQLite: an exclusive ``flock`` on ``<database>.daemon.lock`` (released by the kernel when
the process dies, even by ``kill -9``); the file holds the owner's pid for the message.
PostgreSQL: a session advisory lock, held by a connection kept open for the daemon's life.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from digest.errors import DigestError

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
    handle = path.open("a+")
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
