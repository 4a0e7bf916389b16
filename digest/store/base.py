"""What every part of ``Store`` builds on: the engine, and ORM sessions on it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

from digest.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:  # the journal's module builds on this one
    from digest.store.journal import SendJournal

Row = TypeVar("Row", bound=SQLModel)


class StoreBase:
    """The engine the queries run on, the clock that stamps what they write (and decides
    what is due), and the journal of sends the database failed to record (``journal``:
    none, for a store that never sends); ``Store`` is this plus its query mixins."""

    def __init__(
        self, engine: Engine, clock: Clock = SYSTEM_CLOCK, journal: SendJournal | None = None
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.journal = journal

    def session(self) -> Session:
        """A new session; expire_on_commit off so returned rows stay readable."""
        return Session(self.engine, expire_on_commit=False)

    def insert_new(self, row: Row) -> Row | None:
        """Insert ``row``; None when a unique key says it is there already (another process,
        or a request at the same moment, stored it first)."""
        with self.session() as s:
            s.add(row)
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                return None
            s.refresh(row)
            return row


class _Saved(Protocol):
    id: int | None


def saved_id(row: _Saved) -> int:
    """The id of a row the store returned (saved rows always have one); raises for a row
    never saved, whose id the database has not given yet."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id: it was never saved")
    return row.id
