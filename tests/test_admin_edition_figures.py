"""The console's edition figures (rows by state, bounces, reasons) are read for all the
editions a page shows at once, one grouped query per figure: the same numbers as each
edition's own, and a page of 50 editions costs the queries a page of 3 does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, insert, update
from sqlalchemy.engine import Engine

from digest.app import App
from digest.store.tables import DELIVERIES, SUBSCRIBERS
from digest.web.admin.reports import edition_lines
from tests.admin_site import Console
from tests.conftest import OpenApp
from tests.store_queries import add_edition, add_readers, delivery_row

DAY0 = datetime(2026, 3, 1, 7, tzinfo=UTC)


def new_edition(app: App, day: int) -> int:
    return add_edition(app.store, DAY0 + timedelta(days=day), subject=f"Day {day}")


def row(
    edition: int, reader: int, day: int, status: str, error: str | None = None
) -> dict[str, Any]:
    """A delivery row as a send leaves it, on ``day`` at 07:05."""
    when = DAY0 + timedelta(days=day, minutes=5)
    return delivery_row(edition, reader, status, when, "250 ok" if status == "sent" else error)


BOUNCE_511 = "550 5.1.1 no such user"


def fate(kind: int, day: int, reader: int) -> tuple[str, str | None]:
    """The state and reason of a reader's row (of ``a_week_of_mail``'s kind) on ``day``."""
    suppressed_from = {1: 2, 2: 3, 3: 3, 7: 2, 8: 0, 9: 1}
    if kind in suppressed_from and day >= suppressed_from[kind]:
        return "suppressed", None
    if (kind, day) in ((2, 2), (9, 0)):
        return "failed", BOUNCE_511
    if (kind, day) == (4, 0):
        return "deferred", f"451 4.7.1 try later ({reader % 3})"
    if kind == 6 and day in (1, 2):
        return "skipped", None
    return "sent", None


def a_week_of_mail(app: App) -> list[int]:
    """Four editions to 80 readers, ten kinds of them (by id % 10):
    0 all sent; 1 bounce report between day 1 and 2 (later rows suppressed); 2 a 5.1.1 at
    day 2's send; 3 a spam complaint after day 2; 4 a deferral on day 0, then sent;
    5 bounced after day 3 (the last one); 6 skipped on days 1-2 (nothing for them);
    7 unsubscribed after day 1 (not a bounce); 8 bounced before day 0 went out (its row
    suppressed, no message: nothing counted); 9 a 5.1.1 on day 0, then suppressed.
    Their ids, oldest first."""
    add_readers(app.engine, 80)
    editions = [new_edition(app, day) for day in range(4)]
    rows: list[dict[str, Any]] = []
    left: dict[int, tuple[str, datetime | None]] = {}
    hour = timedelta(hours=1)
    for reader in range(1, 81):
        kind = reader % 10
        for day, edition in enumerate(editions):
            status, error = fate(kind, day, reader)
            rows.append(row(edition, reader, day, status, error))
        left[reader] = {
            1: ("bounced", DAY0 + timedelta(days=1, hours=12)),
            2: ("bounced", DAY0 + timedelta(days=2, minutes=5)),  # at the failed send
            3: ("complained", DAY0 + timedelta(days=2) + 6 * hour),
            5: ("bounced", DAY0 + timedelta(days=3) + 20 * hour),
            7: ("unsubscribed", DAY0 + timedelta(days=1) + 3 * hour),
            8: ("bounced", DAY0 - hour),
            9: ("bounced", DAY0 + timedelta(minutes=5)),
        }.get(kind, ("active", None))
    with app.engine.begin() as connection:
        connection.execute(insert(DELIVERIES), rows)
        for reader, (status, when) in left.items():
            connection.execute(
                update(SUBSCRIBERS)
                .where(SUBSCRIBERS.c.id == reader)
                .values(status=status, unsubscribed_at=when)
            )
    return editions


def test_the_grouped_figures_are_each_editions_own(open_app: OpenApp) -> None:
    app = open_app([("wire", "https://wire.example/feed.xml")])
    editions = a_week_of_mail(app)
    store = app.store
    # By the bounce rule: a bounce counts on the last message before it.
    assert store.editions_bounces(editions) == {
        editions[0]: 8,  # kind 9's 5.1.1
        editions[1]: 8,  # kind 1's report after day 1
        editions[2]: 8 + 8,  # kind 2's 5.1.1, kind 3's complaint
        editions[3]: 8,  # kind 5's report after the last
    }
    counts = store.editions_delivery_counts(editions)
    bounces = store.editions_bounces(editions)
    reasons = store.editions_delivery_reasons(editions)
    assert reasons[editions[0]] == [
        ("failed", BOUNCE_511, 8),
        ("deferred", "451 4.7.1 try later (1)", 3),
        ("deferred", "451 4.7.1 try later (2)", 3),
        ("deferred", "451 4.7.1 try later (0)", 2),
    ]
    two = store.editions_delivery_reasons(editions, limit=2)
    assert two[editions[0]] == reasons[editions[0]][:2]
    for edition in editions:  # the grouped figures are the per-edition ones
        assert counts[edition] == store.delivery_counts(edition)
        assert bounces.get(edition, 0) == store.edition_bounces(edition)
        assert sorted(reasons.get(edition, [])) == sorted(store.delivery_reasons(edition))
    assert store.editions_bounces([]) == {} and store.editions_delivery_counts([]) == {}
    lines = edition_lines(app, [store.edition_by_id(e) for e in reversed(editions)])  # type: ignore[misc]
    assert [line.bounced for line in lines] == [8, 16, 8, 8]
    assert lines[0].counts == counts[editions[3]] and lines[0].progress == 1.0


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements run on ``engine`` inside (any thread: the served console's)."""
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def figure_queries(seen: list[str]) -> int:
    """The statements that read delivery rows (the figures; the pages read no other)."""
    return sum("FROM deliveries" in s for s in seen)


def test_the_pages_cost_the_same_queries_whatever_the_editions_shown(console: Console) -> None:
    """Each edition shown cost three queries (counts, bounces, reasons): 150 for the
    editions page of 50."""
    app = console.app
    add_readers(app.engine, 5)
    days = iter(range(100))

    def pages() -> tuple[int, int]:
        with console.logged_in() as client, statements(app.engine) as seen:
            assert client.get("/admin/editions").status_code == 200
            editions_page = figure_queries(seen)
            seen.clear()
            assert client.get("/admin/").status_code == 200
            return editions_page, figure_queries(seen)

    for _ in range(2):
        with app.engine.begin() as connection:
            for edition in [new_edition(app, next(days))]:
                connection.execute(
                    insert(DELIVERIES), [row(edition, r, 0, "sent") for r in range(1, 6)]
                )
    few = pages()
    for _ in range(30):
        edition = new_edition(app, next(days))
        with app.engine.begin() as connection:
            connection.execute(
                insert(DELIVERIES), [row(edition, r, 0, "failed", "550 no") for r in range(1, 6)]
            )
    many = pages()
    assert few == many, (few, many)
    assert many[0] <= 4, many  # counts, bounces, reasons (and a page's own)


def test_a_retried_message_and_a_tie_keep_the_rule(open_app: OpenApp) -> None:
    """The last message is the last one sent, not the newest edition: a retry of day 0's
    mail sent after day 1's takes the bounce; two messages at one time both count."""
    app = open_app([("wire", "https://wire.example/feed.xml")])
    add_readers(app.engine, 3)
    first, second = new_edition(app, 0), new_edition(app, 1)
    retried = row(first, 1, 1, "sent") | {"sent_at": DAY0 + timedelta(days=1, hours=2)}
    rows = [retried, row(second, 1, 1, "sent"), row(first, 2, 1, "sent"), row(second, 2, 1, "sent")]
    rows += [row(first, 3, 0, "sent"), row(second, 3, 1, "failed", BOUNCE_511)]
    with app.engine.begin() as connection:
        connection.execute(insert(DELIVERIES), rows)
        for reader, minutes in ((1, 300), (2, 300), (3, 5)):
            connection.execute(
                update(SUBSCRIBERS)
                .where(SUBSCRIBERS.c.id == reader)
                .values(status="bounced", unsubscribed_at=DAY0 + timedelta(days=1, minutes=minutes))
            )
    # 1: the retry (first) went out last; 2: both at one time; 3: a 5.1.1 at the send, at
    # the very time of the suppression.
    assert app.store.editions_bounces([first, second]) == {first: 2, second: 2}
    assert [app.store.edition_bounces(e) for e in (first, second)] == [2, 2]
