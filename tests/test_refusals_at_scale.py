"""A run's refusals as unknown are weighed once, at its end, on the whole run: on a large
list that is tens of thousands of rows at once (an old import's dead addresses, believed;
a relay refusing everyone, doubted), more than one statement may bind (PostgreSQL
65,535 parameters; SQLite builds 32,766 or 250,000). The reads and the verdict's write
go in chunks: one statement for them all failed, the verdict was never written and the
dead addresses, left doubted, were mailed and refused every edition.

On PostgreSQL, the rows written straight into the tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from digest.deliver.doubts import UNWEIGHED
from digest.store import Store, open_engine, upgrade
from digest.store.tables import DELIVERIES, SUBSCRIBERS
from tests.pg import fresh_database
from tests.store_queries import add_edition, add_readers, delivery_row

READERS = 70_000  # more than PostgreSQL binds in one statement
SLOT = datetime(2026, 12, 7, 7, tzinfo=UTC)
SAID = "550 5.1.1 <x@example.org>: Recipient address rejected: User unknown" + UNWEIGHED


@pytest.fixture
def store() -> Iterator[Store]:
    """PostgreSQL's limit (SQLite's own, 250,000 in this build, is out of a list's reach
    here and a minute of the suite's time)."""
    with fresh_database() as url:
        yield from _opened(url)


def _opened(url: str) -> Iterator[Store]:
    engine = open_engine(url)
    upgrade(engine)
    add_readers(engine, READERS)
    try:
        yield Store(engine)
    finally:
        engine.dispose()


def _refused_edition(store: Store, day: int) -> tuple[int, dict[int, int]]:
    """An edition whose every row was refused as unknown, recorded unweighed: its id, and
    delivery id -> subscriber id."""
    edition = add_edition(store, SLOT + timedelta(days=day), subject=f"Day {day}")
    with store.engine.begin() as connection:
        readers = list(connection.execute(select(SUBSCRIBERS.c.id)).scalars())
        connection.execute(
            insert(DELIVERIES),
            [delivery_row(edition, r, "failed", SLOT + timedelta(days=day), SAID) for r in readers],
        )
        rows = connection.execute(
            select(DELIVERIES.c.id, DELIVERIES.c.subscriber_id).where(
                DELIVERIES.c.edition_id == edition
            )
        ).all()
    return edition, {int(d): int(s) for d, s in rows}


def test_the_verdict_on_a_whole_list_is_written(store: Store) -> None:
    _, rows = _refused_edition(store, 0)
    reasons = {d: (SAID, "550 believed") for d in rows}

    suppressed = store.settle_refusals(reasons, list(rows))

    assert suppressed == READERS
    with store.engine.connect() as connection:
        left = connection.execute(
            select(SUBSCRIBERS.c.id).where(SUBSCRIBERS.c.status == "active")
        ).all()
        errors = set(connection.execute(select(DELIVERIES.c.error)).scalars())
    assert left == [] and errors == {"550 believed"}


def test_the_whole_lists_earlier_answers_are_read(store: Store) -> None:
    _refused_edition(store, 0)
    edition, today = _refused_edition(store, 1)

    earlier = store.earlier_attempts(list(today.values()), edition)

    assert len(earlier) == READERS
    assert {len(a) for a in earlier.values()} == {1}  # the day before's, not today's
