"""What the database said, and whose it is to mend: the admin's (the database locked, full,
read-only, unreachable, its file damaged) or digest's (a bug in its SQL, or a schema that
missed a migration).

The admin's trouble is told in their words with what to do, and its traceback waits for
-vv: it would only hide the remedy. Anything else keeps its traceback, since that is what
a bug report needs; sqlite3 raises OperationalError for a syntax error or a missing column
as well as for a locked file, so the exception's class alone cannot tell them apart.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from digest.errors import StoreError


def database_words(exc: BaseException) -> str:
    """The driver's own words (``database is locked``), without SQLAlchemy's statement."""
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    text = str(cause).strip()
    return text.splitlines()[0][:200] if text else type(cause).__name__


# What SQLite says of its trouble (sqlite3_errstr's words for SQLITE_BUSY, _FULL, _READONLY,
# _IOERR, _CANTOPEN, _CORRUPT and _NOTADB; its NOMEM is Python's MemoryError, and its
# LOCKED, a conflict inside one connection, is a bug), and what PostgreSQL's client library
# says when it has no SQLSTATE to give (the server never answered, or the connection
# broke): each group has its own wording and remedy in ``database_error``.
_LOCKED = ("database is locked",)
_FULL = ("disk is full", "no space left", "could not extend file", "disk full")
_READ_ONLY = ("readonly database", "read-only file system")
_UNREADABLE = ("unable to open database file", "disk i/o error")
_DAMAGED = ("database disk image is malformed", "file is not a database")
# PostgreSQL stopped, restarting, unreachable, or ending the session: no other process holds
# anything, the server has to be back.
_GONE = (
    "connection refused",
    "could not connect",
    "connection failed",
    "server closed the connection",
    "terminating connection",
    "the database system is",  # starting up, shutting down, in recovery mode
    "no route to host",
    "could not translate host name",
    "timeout expired",
    "consuming input failed",
    "the connection is closed",  # psycopg's, of a connection the server ended
    "ssl connection has been closed",
)
_TROUBLE_WORDS = (*_LOCKED, *_FULL, *_READ_ONLY, *_UNREADABLE, *_DAMAGED, *_GONE)

# PostgreSQL's read_only_sql_transaction (a hot standby, a database or role set
# default_transaction_read_only): psycopg raises it as an InternalError, not an
# OperationalError, and its remedy is the server's, not a file's.
PG_READ_ONLY = "25006"
# lock_not_available: a lock_timeout the admin set ran out behind another session's lock.
PG_LOCK_NOT_AVAILABLE = "55P03"
# The SQLSTATEs (classes, by prefix) of PostgreSQL's own trouble: 08 the connection, 53
# its resources (disk full, out of memory, too many connections), 57P the server shut down,
# restarting or the database dropped, 58 its files (an I/O error), and the two above. Not
# 40P01, a deadlock: digest's own sessions take their locks in one order, so one between
# them is a bug whose traceback is needed; nor 42 (an undefined table or column, a syntax
# error): digest's SQL or a schema behind it (``schema_behind``).
_PG_TROUBLE = ("08", "53", "57P", "58", PG_READ_ONLY, PG_LOCK_NOT_AVAILABLE)
_PG_GONE = ("08", "57P")
_PG_FULL = "53100"

# A table or column the query names is not there: SQLite's words, PostgreSQL's
# undefined_table and undefined_column.
_MISSING = ("no such table", "no such column", "has no column named")
_PG_MISSING = ("42P01", "42703")
SCHEMA_HINT = (
    "the database's schema does not match this digest (a table or column it names is "
    "missing): `digest db upgrade` applies the migrations not yet applied (every start "
    "does too); if a newer digest migrated this database, run that version; if neither, "
    "this is a bug in digest: report it with the traceback"
)


def database_trouble(exc: BaseException) -> bool:
    """Whether ``exc`` is the database's own trouble (locked, full, read-only, gone, its
    file unreadable or damaged), the admin's to mend, which ``database_error`` words.
    PostgreSQL's by its SQLSTATE; SQLite's and a broken connection's by the words of a
    known trouble. Anything else (a syntax error, a missing table or column, a constraint)
    is digest's bug or a schema behind it, and keeps its traceback."""
    if not isinstance(exc, DBAPIError):
        return False
    state = _sqlstate(exc)
    if state is not None:
        return state.startswith(_PG_TROUBLE)
    said = database_words(exc).lower()
    if any(w in said for w in _DAMAGED):  # sqlite3 raises these as DatabaseError
        return True
    return isinstance(exc, OperationalError) and any(w in said for w in _TROUBLE_WORDS)


def schema_behind(exc: BaseException) -> bool:
    """Whether ``exc`` says a table or column the query names is missing: a schema that
    missed a migration (or a bug naming one that never was), not the database's trouble."""
    if not isinstance(exc, DBAPIError):
        return False
    state = _sqlstate(exc)
    if state is not None:
        return state in _PG_MISSING
    said = database_words(exc).lower()
    return any(w in said for w in _MISSING)


def _sqlstate(exc: DBAPIError) -> str | None:
    state = getattr(exc.orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def database_error(exc: SQLAlchemyError) -> StoreError:
    """A database failure (``database_trouble``: locked, full, read-only, gone) in the
    admin's words, with what to do: the CLI prints it, the daemon's jobs log and record it
    (not "a bug in digest"). Raise it ``from exc``: the driver's error stays the cause."""
    words = database_words(exc)
    said = words.lower()
    state = _sqlstate(exc) if isinstance(exc, DBAPIError) else None
    if state == _PG_FULL or any(w in said for w in _FULL):
        return StoreError(
            f"the database cannot be written: its disk is full ({words})",
            "free space on the disk that holds the database (service.database_url), then "
            "run the command again; the daemon sends a slot whose send failed once it can, "
            "within the hour of the slot, or `digest send` sends it now",
        )
    if state == PG_READ_ONLY or "read-only transaction" in said:
        return StoreError(
            f"the database cannot be written: it is read-only ({words})",
            "service.database_url names a PostgreSQL server that takes no writes: a standby "
            "(a replica, or the old primary after a failover): point it at the primary; or "
            "the database or its user is set read-only (`ALTER DATABASE NAME RESET "
            "default_transaction_read_only`)",
        )
    if any(w in said for w in _READ_ONLY):
        return StoreError(
            f"the database cannot be written: it is read-only ({words})",
            "make the database file and its folder writable by the user digest runs as "
            "(SQLite writes -wal and -shm files beside it; a restore or a copy made as "
            "another user often leaves them read-only), or remount its disk read-write",
        )
    if (state or "").startswith(_PG_GONE) or any(w in said for w in _GONE):
        return StoreError(
            f"the database server cannot be reached: {words}",
            "check that PostgreSQL is running and reachable at service.database_url (its "
            "log says why it stopped or ended the session), then run the command again; the "
            "daemon's next jobs try again by themselves, and a slot whose send failed is "
            "sent within the hour of the slot once the server is back",
        )
    if any(w in said for w in _UNREADABLE):
        return StoreError(
            f"the database file cannot be opened or read: {words}",
            "check that the file service.database_url names and its folder exist and are "
            "readable and writable by the user digest runs as, and that the disk under them "
            "is mounted and sound (the system log names a failing disk), then run the "
            "command again",
        )
    if any(w in said for w in _DAMAGED):
        return StoreError(
            f"the database file is damaged or not a database: {words}",
            "check that service.database_url names digest's own SQLite file; if it does, "
            "stop digest and restore the file from a backup (sqlite3's `.recover` saves "
            "what it can read)",
        )
    if state == PG_LOCK_NOT_AVAILABLE or any(w in said for w in _LOCKED):
        return StoreError(
            f"the database is unavailable: {words}",
            "another process may be writing to it (a backup, a long import, a second "
            "digest); run the command again, and check service.database_url",
        )
    return StoreError(
        f"the database is unavailable: {words}",
        "the database server refused for a reason of its own (short of memory or "
        "connections, a failing disk: its log says which); run the command again once it "
        "is mended, and check service.database_url",
    )
