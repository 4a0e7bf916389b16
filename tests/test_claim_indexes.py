"""The claim's path through the indexes of deliveries: a claim writes no entry into the
indexes it does not need (the limits', the Message-IDs': partial), and the store's queries
still find their rows through partial indexes, as the very statements the store sends
(captured), in the generic plan a prepared statement settles on (PostgreSQL) and on SQLite.

The PostgreSQL cases run on the server scripts/test starts (skipped without one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from digest.states import DeliveryStatus
from digest.store import Store, utcnow
from digest.store.delivery_rows import claimable, off_claim_path
from tests.store_queries import store_with_an_edition

PARTIAL = {  # index: its WHERE, as SQLite keeps it or PostgreSQL prints it
    "ix_deliveries_status_sent_at_off_claim": r"WHERE .*(NOT IN|<> ALL).*'pending'.*'sending'",
    "ix_deliveries_message_id": r"WHERE .*message_id\)? IS NOT NULL",
}


@pytest.fixture
def pg(postgres_database: str) -> Iterator[tuple[Store, int]]:
    with store_with_an_edition(postgres_database, 300) as made:
        yield made


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[tuple[Store, int]]:
    with store_with_an_edition(f"sqlite:///{tmp_path / 'digest.db'}", 30) as made:
        yield made


def _sent(store: Store, call: Callable[[], Any]) -> list[tuple[str, Any]]:
    """The statements (SQL, parameters) the store sends while ``call`` runs."""
    seen: list[tuple[str, Any]] = []

    def grab(_c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, _m: bool) -> None:
        seen.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", grab)
    try:
        call()
    finally:
        event.remove(store.engine, "before_cursor_execute", grab)
    return [(sql, params) for sql, params in seen if "deliveries" in sql]


def _sql_value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool | int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _generic_plan(engine: Engine, sql: str, parameters: dict[str, Any]) -> str:
    """PostgreSQL's generic plan of a statement as the store sent it: the one a prepared
    statement settles on after five runs, bound values unknown to the planner. Sequential
    scans are off, so a small table shows which index the planner could use."""
    names: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        names.append(match.group(1))
        return f"${len(names)}"

    prepared = re.sub(r"%\((\w+)\)s", placeholder, sql)
    with engine.connect() as connection:
        connection.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        connection.exec_driver_sql(f"PREPARE probe AS {prepared}")
        values = ", ".join(_sql_value(parameters[name]) for name in names)
        explain = f"EXPLAIN EXECUTE probe({values})" if names else "EXPLAIN EXECUTE probe"
        plan = "\n".join(row[0] for row in connection.exec_driver_sql(explain))
        connection.exec_driver_sql("DEALLOCATE probe")
        connection.rollback()
    return plan


def _sqlite_plan(engine: Engine, sql: str, parameters: Any) -> str:
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters).all()
    return "\n".join(str(row[-1]) for row in rows)


def _claimed(store: Store, edition_id: int) -> tuple[str, list[tuple[str, Any]]]:
    """Queue the edition, claim a batch; the claim token and the claim's statements."""
    store.queue_deliveries(edition_id)
    batch: list[Any] = []
    statements = _sent(store, lambda: batch.extend(store.claim_deliveries(edition_id, 10)))
    assert batch
    return batch[0][0].claim_token, statements


def _plans(
    store: Store, edition_id: int, plan: Callable[[Engine, str, Any], str]
) -> dict[str, str]:
    """The plans of the store's claim and of the queries that lost an index of all rows
    starting with the status: counting an attempt, the limits' counts, the metrics'."""
    token, claim = _claimed(store, edition_id)
    since = utcnow() - timedelta(minutes=1)
    calls: dict[str, Callable[[], Any]] = {
        "attempt": lambda: store.start_attempt(token),
        "renew": lambda: store.renew_lease(token, 60),
        "limits": lambda: store.sent_since(since),
        "oldest": store.oldest_queued,
    }
    sent = {"claim": claim} | {name: _sent(store, call) for name, call in calls.items()}
    return {
        name: "\n----\n".join(plan(store.engine, sql, params) for sql, params in statements)
        for name, statements in sent.items()
    }


def test_a_claim_on_postgresql_reads_and_counts_through_partial_indexes_when_prepared(
    pg: tuple[Store, int],
) -> None:
    """A bound status cannot be matched to a partial index by a generic plan: the claim's
    pick then read the index of (edition, status), counting an attempt and the limits read
    the index of (status, sent_at) that every claim had to write."""
    store, edition_id = pg
    plans = _plans(store, edition_id, _generic_plan)
    for name in ("claim", "attempt", "renew"):
        assert "ix_deliveries_claimable" in plans[name], (name, plans[name])
    limits = plans["limits"].split("\n----\n")
    assert "ix_deliveries_status_sent_at_off_claim" in limits[0], limits[0]
    assert "ix_deliveries_claimable" in limits[1], limits[1]
    oldest = plans["oldest"].split("\n----\n")
    assert "ix_deliveries_claimable" in oldest[0], oldest[0]
    assert "ix_deliveries_status_sent_at_off_claim" in oldest[1], oldest[1]


def test_a_claim_on_sqlite_counts_and_limits_through_partial_indexes(
    lite: tuple[Store, int],
) -> None:
    """SQLite matches a partial index only to a query naming its WHERE term: the queries
    repeat it, so none of them scans the table."""
    store, edition_id = lite
    plans = _plans(store, edition_id, _sqlite_plan)
    for name in ("attempt", "renew"):
        assert "USING INDEX ix_deliveries_claimable" in plans[name], (name, plans[name])
    assert "ix_deliveries_status_sent_at_off_claim" in plans["limits"], plans["limits"]
    assert "ix_deliveries_claimable" in plans["limits"], plans["limits"]
    assert "ix_deliveries_status_sent_at_off_claim" in plans["oldest"], plans["oldest"]
    assert not re.search(r"SCAN deliveries$", "\n".join(plans.values()), re.M), plans


def _index_sql(store: Store) -> dict[str, str]:
    """Every index of deliveries: its definition as the database holds it."""
    if store.engine.dialect.name == "postgresql":
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'deliveries'"
    else:
        query = (
            "SELECT name, coalesce(sql, '') FROM sqlite_master "
            "WHERE type = 'index' AND tbl_name = 'deliveries'"
        )
    with store.engine.connect() as connection:
        return {str(name): str(sql) for name, sql in connection.execute(text(query))}


def _check_partial(store: Store) -> None:
    indexes = _index_sql(store)
    assert "ix_deliveries_status_sent_at" not in indexes  # the index of all rows is gone
    for name, condition in PARTIAL.items():
        assert name in indexes, sorted(indexes)
        assert re.search(condition, indexes[name], re.I), indexes[name]


def test_the_limits_and_message_id_indexes_are_partial_on_sqlite(lite: tuple[Store, int]) -> None:
    _check_partial(lite[0])


def test_the_limits_and_message_id_indexes_are_partial_on_postgresql(
    pg: tuple[Store, int],
) -> None:
    _check_partial(pg[0])


def test_the_queries_of_the_partial_indexes_answer_as_before(lite: tuple[Store, int]) -> None:
    """The limits count sent and in-flight rows, the metrics see the oldest paused row, a
    bounce finds its Message-ID: what the statuses written as literals must not change."""
    store, edition_id = lite
    token, _ = _claimed(store, edition_id)
    claimed = sorted(store.start_attempt(token))
    assert store.sent_since(utcnow() - timedelta(minutes=1)) == 10  # all in flight
    results: list[tuple[int, str, str, str | None]] = [
        (i, DeliveryStatus.SENT, "250 ok", f"<{i}@t>") for i in claimed[:6]
    ]
    results += [(i, DeliveryStatus.DEFERRED, "451 later", None) for i in claimed[6:]]
    assert store.finish_deliveries(results, token) == 10
    assert store.sent_since(utcnow() - timedelta(minutes=1)) == 6
    assert store.window_room(timedelta(hours=1), 5)[0] == 0
    assert store.message_recipients([f"<{claimed[0]}@t>", "<other@t>"]).keys() == {
        f"<{claimed[0]}@t>"
    }
    oldest_pending = store.oldest_queued()
    assert isinstance(oldest_pending, datetime)
    assert store.pause_unsent(edition_id, "budget") == 24  # 20 pending, 4 deferred
    assert store.oldest_queued() is not None  # paused rows are still queued


def _claims_readers_as_plain_records(store: Store, edition_id: int) -> None:
    from digest.store.claims import ClaimedSubscriber

    with store.engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE subscribers SET topics = 'science,arts', timezone = 'Europe/Paris', "
                "locale = 'fr' WHERE id = (SELECT min(id) FROM subscribers)"
            )
        )
        first = connection.execute(
            text("SELECT id, email, name, public_id FROM subscribers ORDER BY id LIMIT 1")
        ).one()
    store.queue_deliveries(edition_id)
    claimed = store.claim_deliveries(edition_id, 1000)
    assert {type(s) for _, s in claimed} == {ClaimedSubscriber}
    assert all(s.id == row.subscriber_id for row, s in claimed)
    by_id = {s.id: s for _, s in claimed}
    assert by_id[first.id] == ClaimedSubscriber(
        first.id, first.email, first.name, first.public_id, "science,arts", "Europe/Paris", "fr"
    )
    assert sum(s.timezone is None and s.topics == "" for s in by_id.values()) == len(by_id) - 1


def test_a_claim_hands_each_subscriber_as_a_plain_record_of_what_sending_reads_sqlite(
    lite: tuple[Store, int],
) -> None:
    """Not a SQLModel ``Subscriber`` made per row (a fifth of a worker's main thread): the
    address, name, link id, topics, zone and language, on both engines alike."""
    _claims_readers_as_plain_records(*lite)


def test_a_claim_hands_each_subscriber_as_a_plain_record_of_what_sending_reads_pg(
    pg: tuple[Store, int],
) -> None:
    _claims_readers_as_plain_records(*pg)


def test_the_index_conditions_are_built_once_per_set_of_states() -> None:
    """``claimable`` / ``off_claim_path`` are in every claim, reclaim and rate count: the
    same expression is handed out each time, not its SQL written anew."""
    pending, sent = DeliveryStatus.PENDING, DeliveryStatus.SENT
    assert claimable(pending) is claimable(pending)
    assert off_claim_path(sent) is off_claim_path(sent)
    assert claimable(pending) is not claimable(pending, DeliveryStatus.DEFERRED)
    written = str(claimable(pending).compile(compile_kwargs={"literal_binds": True}))
    assert written.startswith("deliveries.status IN ('pending', ")
    assert written.endswith("AND deliveries.status = 'pending'")
