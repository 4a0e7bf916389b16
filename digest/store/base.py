"""What every part of ``Store`` builds on: the engine, and ORM sessions on it."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session

from digest.clock import SYSTEM_CLOCK, Clock


class StoreBase:
    """The engine the queries run on, and the clock that stamps what they write (and
    decides what is due); ``Store`` is this plus its query mixins."""

    def __init__(self, engine: Engine, clock: Clock = SYSTEM_CLOCK) -> None:
        self.engine = engine
        self.clock = clock

    def session(self) -> Session:
        """A new session; expire_on_commit off so returned rows stay readable."""
        return Session(self.engine, expire_on_commit=False)
