"""A bulk import of subscribers: a chunk at a time, one look-up and one insert (COPY on
PostgreSQL) a chunk, each new row's first line of history written by the same statement.

A mixin of ``Store``; all SQL stays in ``store/``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import Table, Text, func, insert, literal, null
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from digest.states import LEFT, SubscriberStatus
from digest.store.base import StoreBase
from digest.store.columns import UTCDateTime
from digest.store.tables import SUBSCRIBER_EVENTS, SUBSCRIBERS

LEFT_SHOWN = 1000  # addresses an import names of those it did not re-add (a count of all)


@dataclass
class ImportCounts:
    """What a bulk import did with its rows, added up chunk by chunk."""

    added: int = 0
    already: int = 0  # active already
    not_readded: int = 0  # in another status (left, pending, paused): an import is no consent
    left: list[str] = field(default_factory=list)  # their addresses, the first LEFT_SHOWN
    # Addresses a row earlier in the same import already added, as (index in the chunk, email).
    twice: list[tuple[int, str]] = field(default_factory=list)


class _Person(Protocol):
    """A row to import (``digest.subscribers.NewSubscriber``)."""

    @property
    def email(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def topics(self) -> tuple[str, ...]: ...
    @property
    def timezone(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def locale(self) -> str | None: ...


class ImportQueries(StoreBase):
    """The import's queries (``Store`` inherits them)."""

    def last_subscriber_id(self) -> int:
        """The highest subscriber id so far (0 for none): an import adds rows above it."""
        with self.engine.connect() as connection:
            return int(connection.execute(core_select(func.max(SUBSCRIBERS.c.id))).scalar() or 0)

    def statuses_of(self, emails: Sequence[str], chunk: int = 1000) -> dict[str, str]:
        """The status of each of these addresses that is a subscriber already: what an
        import's preview says each row will do, looked up by the addresses in the file
        (a chunk per query) rather than by reading the whole list."""
        unique = sorted(set(emails))
        found: dict[str, str] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(unique), chunk):
                part = unique[start : start + chunk]
                rows = connection.execute(
                    core_select(SUBSCRIBERS.c.email, SUBSCRIBERS.c.status).where(
                        SUBSCRIBERS.c.email.in_(part)
                    )
                )
                found.update((email, status) for email, status in rows)
        return found

    def import_subscribers(
        self,
        people: Sequence[_Person],
        added_after: int,
        counts: ImportCounts,
        by: str = "an import",
    ) -> None:
        """Add the people of one chunk of an import who are not subscribers yet, adding to
        ``counts``: one lookup of the chunk's addresses and one insert for the new ones.

        An address already in (any status) is left as it is. ``added_after``: the highest id
        before the import began, so a row above it was added by an earlier chunk of the same
        file (its address is in the file twice). Each new row takes the status given (an
        export's row imports as it was). A sign-up of the same address between the lookup
        and the insert is a conflict: the chunk is looked up again.
        """
        for attempt in range(3):
            try:
                with self.engine.begin() as connection:
                    chunk = _import_chunk(connection, people, added_after, by, self.clock.now())
            except IntegrityError:
                if attempt == 2:
                    raise
                continue
            counts.added += chunk.added
            counts.already += chunk.already
            counts.not_readded += chunk.not_readded
            counts.twice.extend(chunk.twice)
            counts.left.extend(chunk.left[: max(LEFT_SHOWN - len(counts.left), 0)])
            return


def _import_chunk(
    connection: Connection, people: Sequence[_Person], added_after: int, by: str, now: datetime
) -> ImportCounts:
    """``import_subscribers`` for one chunk at ``now``, in the caller's transaction."""
    found = {
        email: (row_id, status)
        for email, row_id, status in connection.execute(
            core_select(SUBSCRIBERS.c.email, SUBSCRIBERS.c.id, SUBSCRIBERS.c.status).where(
                SUBSCRIBERS.c.email.in_({p.email for p in people})
            )
        )
    }
    chunk = ImportCounts()
    new = []
    for index, person in enumerate(people):
        row_id, status = found.get(person.email, (None, None))
        if row_id is None:
            new.append(
                {
                    "email": person.email,
                    "name": person.name,
                    "public_id": secrets.token_urlsafe(12),
                    "status": person.status,
                    "topics": ",".join(person.topics),
                    "timezone": person.timezone,
                    "locale": person.locale,
                    "created_at": now,
                    "unsubscribed_at": now if person.status in LEFT else None,
                }
            )
            found[person.email] = (-1, person.status)
        elif row_id == -1 or row_id > added_after:  # added by this import: in the file twice
            chunk.twice.append((index, person.email))
        elif status == SubscriberStatus.ACTIVE:
            chunk.already += 1
        else:
            chunk.not_readded += 1
            if len(chunk.left) < LEFT_SHOWN:
                chunk.left.append(person.email)
    if new and connection.dialect.name == "postgresql":
        _copy(connection, SUBSCRIBERS, new)
    elif new:
        connection.execute(insert(SUBSCRIBERS), new)
    if new:  # their first line of history, in one statement
        _record_made(connection, [str(r["email"]) for r in new], by, now)
    chunk.added = len(new)
    return chunk


def _record_made(connection: Connection, emails: Sequence[str], by: str, at: datetime) -> None:
    """``record_status`` for rows an import just made, known by address: their ids and
    statuses read by the INSERT itself (no lookup of the ids in between)."""
    made = core_select(
        SUBSCRIBERS.c.id,
        literal(at, UTCDateTime()),
        null(),
        SUBSCRIBERS.c.status,
        literal(by, Text()),
    ).where(SUBSCRIBERS.c.email.in_(emails))
    connection.execute(
        insert(SUBSCRIBER_EVENTS).from_select(
            ["subscriber_id", "at", "from_status", "to_status", "by"], made
        )
    )


def _copy(connection: Connection, table: Table, rows: Sequence[Mapping[str, object]]) -> None:
    """PostgreSQL's COPY of ``rows`` into ``table``, in the connection's transaction: the
    fastest way in (an executemany sends the rows one statement at a time). Each value goes
    through its column type's bind step, as in an INSERT (a datetime as naive UTC)."""
    columns = list(rows[0])
    steps = [table.c[c].type.bind_processor(connection.dialect) for c in columns]
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(
                [
                    row[c] if step is None else step(row[c])
                    for c, step in zip(columns, steps, strict=True)
                ]
            )
