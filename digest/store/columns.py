"""Column types and helpers the tables share: times stored as UTC, state columns checked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CheckConstraint, Column, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field

from digest.clock import SYSTEM_CLOCK
from digest.states import sql_in


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC without a zone (SQLite has none) and always hands back aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """Aware UTC now from the system clock, for code with no store or app at hand
    (benchmarks, tests). Nothing in the service calls it: the store stamps with its own
    clock and the stages ask ``app.clock`` (``digest.clock``), so a test can set the time."""
    return SYSTEM_CLOCK.now()


def when(nullable: bool = False, index: bool = False) -> Any:
    """A time column: aware UTC in and out (``UTCDateTime``), empty until set."""
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def one_of(table: str, column: str, values: Any) -> CheckConstraint:
    """A state column holds one of its type's values (digest.states); migration 0017."""
    return CheckConstraint(sql_in(column, values), name=f"ck_{table}_{column}")
