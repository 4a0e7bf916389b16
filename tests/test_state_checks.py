"""Statuses are types: the database refuses a status no code writes (migration 0017), and
rows written before the constraints keep every valid status through the upgrade."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from digest.errors import StoreError
from digest.states import (
    DeliveryStatus,
    SourceStatus,
    SubscriberStatus,
    WorkerRole,
    WorkerState,
)
from digest.store import open_engine, upgrade

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC).replace(tzinfo=None)


def _rows_of_every_status(engine: Engine) -> None:
    """One row for every value of every state column, written at migration 0016."""
    with engine.begin() as c:
        for i, source_status in enumerate(SourceStatus):
            c.execute(
                text("INSERT INTO sources (id, name, url, status, consecutive_failures, items_seen)"
                     " VALUES (:i, :n, :u, :s, 0, 0)"),
                {"i": i + 1, "n": f"s{i}", "u": f"https://s{i}.test/", "s": source_status},
            )  # fmt: skip
        for i, status in enumerate(SubscriberStatus):
            c.execute(
                text("INSERT INTO subscribers (id, email, public_id, status, topics, created_at)"
                     " VALUES (:i, :e, :p, :s, '', :t)"),
                {"i": i + 1, "e": f"p{i}@example.org", "p": f"pub{i}", "s": status, "t": NOW},
            )  # fmt: skip
            c.execute(
                text("INSERT INTO subscriber_events (subscriber_id, at, from_status, to_status, by)"
                     " VALUES (:i, :t, :f, :s, 'a test')"),
                {"i": i + 1, "t": NOW, "f": None if i == 0 else status, "s": status},
            )  # fmt: skip
        for edition in (1, 2):
            c.execute(
                text("INSERT INTO editions (id, digest_id, slot, created_at, subject, html, text,"
                     " story_count, stories) VALUES (:e, 'daily', :s, :t, 'S', '', '', 0, '')"),
                {"e": edition, "s": NOW.replace(hour=edition), "t": NOW},
            )  # fmt: skip
        people = len(SubscriberStatus)
        for i, delivery_status in enumerate(DeliveryStatus):
            c.execute(
                text("INSERT INTO deliveries (edition_id, subscriber_id, status, attempts,"
                     " updated_at) VALUES (:e, :p, :s, 0, :t)"),
                {"e": 1 + i // people, "p": 1 + i % people, "s": delivery_status, "t": NOW},
            )  # fmt: skip
        for i, state in enumerate(["", *WorkerState]):
            c.execute(
                text("INSERT INTO workers (id, role, host, pid, started_at, last_seen, sent, rate,"
                     " state) VALUES (:id, :r, 'h', :i, :t, :t, 0, 0, :s)"),
                {"id": f"h:{i}", "r": list(WorkerRole)[i % 2], "i": i, "t": NOW, "s": state},
            )  # fmt: skip


def _snapshot(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    queries = {
        "sources": "SELECT id, status FROM sources ORDER BY id",
        "subscribers": "SELECT id, status FROM subscribers ORDER BY id",
        "events": "SELECT subscriber_id, from_status, to_status FROM subscriber_events ORDER BY id",
        "deliveries": "SELECT subscriber_id, status FROM deliveries ORDER BY id",
        "workers": "SELECT id, role, state FROM workers ORDER BY id",
    }
    with engine.connect() as c:
        return {name: [tuple(r) for r in c.execute(text(q))] for name, q in queries.items()}


BAD_INSERTS = {
    "sources.status": "UPDATE sources SET status = 'broken' WHERE id = 1",
    "subscribers.status": "UPDATE subscribers SET status = 'activ' WHERE id = 1",
    "deliveries.status": "UPDATE deliveries SET status = 'bounced' WHERE id = 1",
    "subscriber_events.to_status": "UPDATE subscriber_events SET to_status = 'gone' WHERE id = 1",
    "subscriber_events.from_status": "UPDATE subscriber_events SET from_status = 'x' WHERE id = 1",
    "workers.role": "UPDATE workers SET role = 'boss' WHERE id = 'h:1'",
    "workers.state": "UPDATE workers SET state = 'asleep' WHERE id = 'h:1'",
    "a new delivery": "INSERT INTO deliveries (edition_id, subscriber_id, status, attempts,"
    " updated_at) VALUES (1, 6, 'queued', 0, '2026-12-07 06:00:00')",
}


def check_the_upgrade_keeps_rows_and_refuses_unknown_statuses(url: str) -> None:
    """The test's body, shared with the PostgreSQL run (tests/test_postgres.py)."""
    engine = open_engine(url)
    try:
        upgrade(engine, "0016")
        _rows_of_every_status(engine)
        before = _snapshot(engine)
        upgrade(engine)
        assert _snapshot(engine) == before  # every row, every status, survived the copy
        for what, statement in BAD_INSERTS.items():
            with pytest.raises(IntegrityError), engine.begin() as c:
                c.execute(text(statement))
            assert _snapshot(engine) == before, what
        # Every valid value is still accepted after the upgrade.
        with engine.begin() as c:
            for status in DeliveryStatus:
                c.execute(text("UPDATE deliveries SET status = :s WHERE id = 1"), {"s": status})
    finally:
        engine.dispose()


def test_the_upgrade_keeps_rows_and_refuses_unknown_statuses_on_sqlite(tmp_path: Path) -> None:
    check_the_upgrade_keeps_rows_and_refuses_unknown_statuses(f"sqlite:///{tmp_path / 'db.sqlite'}")


def test_an_unknown_status_already_stored_stops_the_upgrade_with_a_remedy(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine, "0016")
    _rows_of_every_status(engine)
    with engine.begin() as c:
        c.execute(text("UPDATE deliveries SET status = 'queued' WHERE id = 2"))
    with pytest.raises(StoreError) as caught:
        upgrade(engine)
    assert "deliveries.status" in caught.value.message and "'queued'" in caught.value.message
    assert "pending" in caught.value.hint
    with engine.connect() as c:  # nothing changed: still at 0016, the row as it was
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0016"
        assert c.execute(text("SELECT status FROM deliveries WHERE id = 2")).scalar() == "queued"


def test_the_database_allows_exactly_the_values_each_state_type_has(tmp_path: Path) -> None:
    """Comparing migrations with the models does not look at CHECK constraints: this does,
    so a value added to a type without a migration fails here, not at a user's write."""
    engine = open_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    types: dict[tuple[str, str], list[str]] = {
        ("sources", "status"): list(SourceStatus),
        ("subscribers", "status"): list(SubscriberStatus),
        ("deliveries", "status"): list(DeliveryStatus),
        ("subscriber_events", "from_status"): list(SubscriberStatus),
        ("subscriber_events", "to_status"): list(SubscriberStatus),
        ("workers", "role"): list(WorkerRole),
        ("workers", "state"): ["", *WorkerState],
    }
    with engine.connect() as c:
        query = text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
        tables = {name: sql for name, sql in c.execute(query)}
    for (table, column), values in types.items():
        found = re.search(
            rf"CONSTRAINT ck_{table}_{column} CHECK \({column} IN \((.*?)\)\)", tables[table]
        )
        assert found is not None, f"{table}.{column} has no check"
        assert re.findall(r"'([^']*)'", found.group(1)) == values, f"{table}.{column}"


def test_every_delivery_state_is_final_or_queued_never_both() -> None:
    from digest.states import FINAL_DELIVERY_STATES, QUEUED_DELIVERY_STATES

    assert set(FINAL_DELIVERY_STATES) | set(QUEUED_DELIVERY_STATES) == set(DeliveryStatus)
    assert not set(FINAL_DELIVERY_STATES) & set(QUEUED_DELIVERY_STATES)
