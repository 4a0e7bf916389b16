"""What every part of ``Store`` builds on: the engine, and ORM sessions on it."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session


class StoreBase:
    """The engine the queries run on; ``Store`` is this plus its query mixins."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def session(self) -> Session:
        """A new session; expire_on_commit off so returned rows stay readable."""
        return Session(self.engine, expire_on_commit=False)
