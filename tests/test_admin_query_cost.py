"""What the console's edition page costs the database does not grow with the history kept:
an edition's page of deliveries, and its Retry count, read that edition's rows, not every
earlier edition's (a year of a daily digest at 100,000 readers is 36 million rows).

The work is counted in SQLite's virtual-machine steps (its progress handler), which, unlike
a stopwatch, does not depend on the machine's load."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, insert, select
from sqlalchemy.engine import Engine

from digest.app import App
from digest.store.tables import DELIVERIES, SUBSCRIBERS
from tests.conftest import OpenApp
from tests.store_queries import add_edition, add_readers, delivery_row

READERS = 300


@contextmanager
def vm_steps(engine: Engine) -> Iterator[list[int]]:
    """Count (in hundreds) the SQLite VM steps of the statements run inside; ``[count]``."""
    count = [0]

    def tick() -> int:
        count[0] += 1
        return 0  # go on

    def before(conn: Any, *args: Any) -> None:
        conn.connection.driver_connection.set_progress_handler(tick, 100)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield count
    finally:
        event.remove(engine, "before_cursor_execute", before)
        engine.dispose()  # the pooled connections go, and their handlers with them


def queued_editions(app: App, editions: int, status: str = "sent") -> list[int]:
    """``editions`` editions, each with a delivery row in ``status`` for every reader
    (written straight into the table, as a send leaves them); their ids, oldest first."""
    with app.engine.connect() as connection:
        readers = list(connection.execute(select(SUBSCRIBERS.c.id)).scalars())
    slot = datetime(2026, 1, 1, 7, tzinfo=UTC)
    ids = []
    for day in range(editions):
        edition = add_edition(app.store, slot + timedelta(days=day), subject=f"Day {day}")
        when = slot + timedelta(days=day, minutes=5)
        with app.engine.begin() as connection:
            connection.execute(
                insert(DELIVERIES), [delivery_row(edition, r, status, when) for r in readers]
            )
        ids.append(edition)
    return ids


def test_a_page_of_the_newest_edition_costs_what_the_oldest_ones_does(
    open_app: OpenApp,
) -> None:
    """The page walked the table in row order from its first row, so the newest edition's
    (the one an admin opens) read every earlier edition's rows first."""
    app = open_app([("wire", "https://wire.example/feed.xml")])
    add_readers(app.engine, READERS)
    first, *_, last = queued_editions(app, 12)
    with app.engine.begin() as connection:  # the planner's statistics, as PostgreSQL's
        connection.exec_driver_sql("ANALYZE")  # autovacuum keeps them
    with vm_steps(app.engine) as oldest:
        assert len(app.store.edition_deliveries(first, "", 0, 51)) == 51
    with vm_steps(app.engine) as newest:
        page = app.store.edition_deliveries(last, "", 0, 51)
    assert [d.edition_id for d, _ in page] == [last] * 51
    assert newest[0] <= 2 * oldest[0] + 5, (oldest, newest)
    # And the next page goes on where this one stopped, in the same cost.
    with vm_steps(app.engine) as following:
        more = app.store.edition_deliveries(last, "sent", page[-1][1].id or 0, 51)
    assert more[0][1].id == page[-1][1].id + 1  # type: ignore[operator]
    assert following[0] <= 2 * oldest[0] + 5, (oldest, following)


def test_the_retry_count_reads_the_waiting_rows_not_the_whole_list(open_app: OpenApp) -> None:
    """The count walked every active reader to find the few whose row waits."""
    app = open_app([("wire", "https://wire.example/feed.xml")])
    add_readers(app.engine, READERS)
    *_, edition = queued_editions(app, 4)
    with app.engine.begin() as connection:
        connection.execute(
            DELIVERIES.update()
            .where(DELIVERIES.c.edition_id == edition, DELIVERIES.c.subscriber_id <= 5)
            .values(status="failed", sent_at=None)
        )
        connection.execute(
            DELIVERIES.update()
            .where(DELIVERIES.c.subscriber_id % 7 == 0)
            .values(status="deferred", sent_at=None)
        )
        connection.exec_driver_sql("ANALYZE")
    with vm_steps(app.engine) as few:
        assert app.store.retryable(edition) == 5 + 42
    with vm_steps(app.engine) as counted:  # the edition's rows by state: all 300 read
        assert sum(app.store.delivery_counts(edition).values()) == READERS
    assert few[0] <= counted[0], (few, counted)
    # Ten times the readers (who joined since: no row of this edition): the same work.
    with app.engine.begin() as connection:
        connection.execute(
            insert(SUBSCRIBERS),
            [
                {
                    "email": f"later{i}@example.org",
                    "public_id": f"later-{i}",
                    "status": "active",
                    "topics": "",
                    "created_at": datetime(2026, 2, 1, tzinfo=UTC),
                }
                for i in range(10 * READERS)
            ],
        )
        connection.exec_driver_sql("ANALYZE")
    with vm_steps(app.engine) as many:
        assert app.store.retryable(edition) == 5 + 42
    assert many[0] <= 2 * few[0] + 5, (few, many)
