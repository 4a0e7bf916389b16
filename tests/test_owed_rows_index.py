"""The store asks which editions still have a message to send (every build, through the
views' prune; the views' prune in its write transaction; the history's prune) as `status IN`
the owed states, so the (edition_id, status) index finds each edition's few owed rows: as
`NOT IN` the final ones it read every row of every edition (1M rows: ~1 s a build).

Checked on the very statements the store sends (captured), in SQLite's plan and in the
generic plan a prepared statement settles on (PostgreSQL, skipped without a server)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine

from digest.states import FINAL_DELIVERY_STATES, QUEUED_DELIVERY_STATES, DeliveryStatus
from digest.store import Store, utcnow
from digest.store.tables import DELIVERIES
from tests.store_queries import store_with_an_edition
from tests.test_claim_indexes import _generic_plan, _sent, _sqlite_plan

INDEX = "ix_deliveries_edition_status"


def test_the_owed_states_are_every_state_but_the_final_ones() -> None:
    assert set(QUEUED_DELIVERY_STATES) == set(DeliveryStatus) - set(FINAL_DELIVERY_STATES)


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[tuple[Store, int]]:
    with store_with_an_edition(f"sqlite:///{tmp_path / 'digest.db'}", 30) as (store, edition_id):
        assert store.queue_deliveries(edition_id) == 30
        yield store, edition_id


@pytest.fixture
def pg(postgres_database: str) -> Iterator[tuple[Store, int]]:
    with store_with_an_edition(postgres_database, 30) as (store, edition_id):
        assert store.queue_deliveries(edition_id) == 30
        yield store, edition_id


def _set(store: Store, status: DeliveryStatus, *, first: bool) -> None:
    """The first delivery row (``first``), or every other one, set to ``status``."""
    which = DELIVERIES.c.id == 1 if first else DELIVERIES.c.id > 1
    with store.engine.begin() as connection:
        connection.execute(update(DELIVERIES).where(which).values(status=status))


def _being_sent(store: Store, _edition_id: int) -> None:
    """An edition is owed while any row is owed (a paused one too), not once all are final."""
    assert [digest for digest, _, _ in store.editions_being_sent()] == ["daily"]
    _set(store, DeliveryStatus.SENT, first=False)
    assert len(store.editions_being_sent()) == 1  # the first row is still pending
    _set(store, DeliveryStatus.PAUSED, first=True)
    assert len(store.editions_being_sent()) == 1  # paused by the error budget: still owed
    _set(store, DeliveryStatus.FAILED, first=True)
    assert store.editions_being_sent() == []


def test_an_edition_is_being_sent_while_a_row_is_owed_on_sqlite(lite: tuple[Store, int]) -> None:
    _being_sent(*lite)


def test_an_edition_is_being_sent_while_a_row_is_owed_on_postgresql(
    pg: tuple[Store, int],
) -> None:
    _being_sent(*pg)


def _plans(store: Store, plan: Callable[[Engine, str, Any], str]) -> dict[str, str]:
    """The plans of the store's statements on deliveries that ask for owed rows."""
    later = utcnow() + timedelta(days=1)
    calls: dict[str, Callable[[], Any]] = {
        "being sent": store.editions_being_sent,
        "views' prune": lambda: store.prune_edition_views("daily", later, keep=0),
        "history's prune": lambda: store._prunable(later, with_rows=False),
    }
    plans = {}
    for name, call in calls.items():
        statements = _sent(store, call)
        assert statements, name
        plans[name] = "\n----\n".join(plan(store.engine, sql, p) for sql, p in statements)
    return plans


def test_the_owed_rows_are_found_through_the_edition_status_index_on_sqlite(
    lite: tuple[Store, int],
) -> None:
    for name, plan in _plans(lite[0], _sqlite_plan).items():
        assert f"{INDEX} (edition_id=? AND status=?)" in plan, (name, plan)
        assert f"{INDEX} (edition_id=?)\n" not in plan + "\n", (name, plan)


def test_the_owed_rows_are_asked_for_by_their_states_on_postgresql(
    pg: tuple[Store, int],
) -> None:
    """On a few rows the planner may filter an edition's rows by status after the index
    (bench/owed_editions.py shows the plan on 1M rows: the status in the Index Cond);
    what this pins is the form it can use the index with, never `<> ALL` (`NOT IN`),
    which made it read every row of deliveries in parallel."""
    owed = "= ANY ('{" + ",".join(QUEUED_DELIVERY_STATES) + "}'"
    for name, plan in _plans(pg[0], _generic_plan).items():
        assert INDEX in plan and owed in plan, (name, plan)
        assert "<> ALL" not in plan, (name, plan)
