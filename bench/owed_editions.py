"""How long the store takes to find the editions still being sent, on a year of delivery rows,
against the `status NOT IN (final states)` form it replaced, in the same run.

Every edition build asks which editions still have a message to send
(``Store.editions_being_sent``, through the views' prune), the views' prune asks it again
inside its write transaction, and the history's prune asks which old editions have none
(``Store._prunable``). Asked as `status IN (the owed states)`, the (edition_id, status)
index finds each edition's few owed rows; as `NOT IN` the final ones, it reads every row
of every edition. The database is built by the real migrations, ``--editions`` x
``--readers`` delivery rows (all sent but ten of the newest edition's), then ANALYZEd.

    .venv/bin/python bench/owed_editions.py [--editions 100] [--readers 10000] [--postgres URL]

With ``--postgres`` (a server URL such as ``postgresql+psycopg://postgres@127.0.0.1:5432/
postgres``; ``scripts/_services.sh start_postgres`` starts one) the same runs on a fresh
database on that server too. Prints each query's plan; last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# ruff: noqa: E402  (digest is imported after sys.path is set)

from sqlalchemy import Engine, Select, and_, event, exists, func, select

from digest.states import FINAL_DELIVERY_STATES
from digest.store.engine import open_engine, upgrade
from digest.store.store import Store
from digest.store.tables import DELIVERIES, EDITIONS

FIRST_SLOT = datetime(2025, 12, 1, 7, tzinfo=UTC)
STAMP = "2025-12-01 00:00:00"
OWED = 10  # pending rows of the newest edition: it is being sent
RUNS = 5


def _naive_being_sent() -> Select[Any]:
    """``editions_being_sent`` as it was: every row not in a final state."""
    owed = exists().where(
        DELIVERIES.c.edition_id == EDITIONS.c.id,
        DELIVERIES.c.status.not_in(list(FINAL_DELIVERY_STATES)),
    )
    return select(EDITIONS.c.digest_id, EDITIONS.c.slot, EDITIONS.c.created_at).where(owed)


def _naive_prunable(before: datetime) -> Select[Any]:
    """``_prunable``'s query as it was (its other conditions unchanged)."""
    latest = EDITIONS.alias("latest")
    newest = (
        select(func.max(latest.c.slot))
        .where(latest.c.digest_id == EDITIONS.c.digest_id)
        .scalar_subquery()
    )
    waiting = exists().where(
        DELIVERIES.c.edition_id == EDITIONS.c.id,
        DELIVERIES.c.status.not_in(list(FINAL_DELIVERY_STATES)),
    )
    old = and_(EDITIONS.c.slot < before, EDITIONS.c.slot < newest, ~waiting)
    return select(EDITIONS.c.id).where(old).order_by(EDITIONS.c.id)


def _rows(editions: int, readers: int) -> Iterator[tuple[Any, ...]]:
    row = 0
    for edition in range(1, editions + 1):
        for reader in range(1, readers + 1):
            row += 1
            owed = edition == editions and reader <= OWED
            yield (row, edition, reader, "pending" if owed else "sent", 0 if owed else 1, STAMP)


def fill(engine: Engine, editions: int, readers: int) -> None:
    """The subscribers, editions (a day apart) and their delivery rows, then ANALYZE."""
    subscribers = [
        (i, f"reader{i}@example.org", f"p{i}", "active", "", STAMP) for i in range(1, readers + 1)
    ]
    slots = [
        (e, "daily", FIRST_SLOT + timedelta(days=e - 1), STAMP, "s", "h", "t", 5, "{}")
        for e in range(1, editions + 1)
    ]
    with engine.begin() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        if engine.dialect.name == "sqlite":
            cursor = raw.cursor()
            cursor.executemany(
                "INSERT INTO subscribers (id, email, public_id, status, topics, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                subscribers,
            )
            cursor.executemany(
                "INSERT INTO editions (id, digest_id, slot, created_at, subject, html, text, "
                "story_count, stories) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*e[:2], e[2].strftime("%Y-%m-%d %H:%M:%S.%f"), *e[3:]) for e in slots],
            )
            cursor.executemany(
                "INSERT INTO deliveries (id, edition_id, subscriber_id, status, attempts, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                _rows(editions, readers),
            )
        else:
            with raw.cursor() as cursor:
                for table, columns, data in (
                    (
                        "subscribers",
                        "id, email, public_id, status, topics, created_at",
                        subscribers,
                    ),
                    (
                        "editions",
                        "id, digest_id, slot, created_at, subject, html, text, story_count, "
                        "stories",
                        slots,
                    ),
                    (
                        "deliveries",
                        "id, edition_id, subscriber_id, status, attempts, updated_at",
                        _rows(editions, readers),
                    ),
                ):
                    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        for record in data:
                            copy.write_row(record)
    # VACUUM as autovacuum would have: PostgreSQL's index-only scans skip the heap then.
    maintenance = "ANALYZE" if engine.dialect.name == "sqlite" else "VACUUM ANALYZE"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(maintenance)


def timed(run: Callable[[], object]) -> tuple[float, object]:
    """The median wall time of RUNS runs (after one to warm the cache), and the result."""
    result = run()
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def executed(engine: Engine, run: Callable[[], object]) -> tuple[str, Any]:
    """The last statement ``run`` sent to the database, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def note(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", note)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", note)
    return seen[-1]


def plan(engine: Engine, statement: str, parameters: Any = ()) -> str:
    """The statement's plan (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on PostgreSQL)."""
    explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(explain + statement, parameters).all()
    return "\n".join(f"    {row[-1]}" for row in rows)


def compiled(engine: Engine, query: Select[Any]) -> str:
    return str(query.compile(engine, compile_kwargs={"literal_binds": True}))


def measure(engine: Engine, editions: int, readers: int) -> dict[str, Any]:
    """Each query ours and naive on a filled database: median seconds and the speedup."""
    upgrade(engine)
    start = time.perf_counter()
    fill(engine, editions, readers)
    took = time.perf_counter() - start
    print(f"{engine.dialect.name}: {editions * readers:,} delivery rows filled in {took:.0f} s")
    store = Store(engine)
    before = FIRST_SLOT + timedelta(days=editions)

    def naive_rows(query: Select[Any]) -> Callable[[], list[tuple[Any, ...]]]:
        def run() -> list[tuple[Any, ...]]:
            with engine.connect() as connection:
                return [tuple(row) for row in connection.execute(query)]

        return run

    def prunable() -> list[tuple[Any, ...]]:
        return [(i,) for batch in store._prunable(before, with_rows=False) for i in batch]

    figures: dict[str, Any] = {"backend": engine.dialect.name, "rows": editions * readers}
    for name, ours, naive in (
        ("being_sent", store.editions_being_sent, _naive_being_sent()),
        ("prunable", prunable, _naive_prunable(before)),
    ):
        ours_s, got = timed(ours)
        naive_s, expected = timed(naive_rows(naive))
        assert sorted(got) == sorted(expected), name  # type: ignore[call-overload]
        figures[name] = {
            "ours_s": round(ours_s, 5),
            "naive_s": round(naive_s, 5),
            "speedup_x": round(naive_s / ours_s, 1),
            "editions_found": len(got),  # type: ignore[arg-type]
        }
        print(f"  {name}: ours {ours_s * 1000:.2f} ms, naive {naive_s * 1000:.1f} ms")
        print("  ours:\n" + plan(engine, *executed(engine, ours)))
        print("  naive:\n" + plan(engine, compiled(engine, naive)))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--editions", type=int, default=100)
    parser.add_argument("--readers", type=int, default=10_000)
    parser.add_argument("--postgres", help="a PostgreSQL server URL: run there too")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        engine = open_engine(f"sqlite:///{folder}/owed.db")
        try:
            results.append(measure(engine, args.editions, args.readers))
        finally:
            engine.dispose()
    if args.postgres:
        from tests.pg import create_database, drop_database

        url = create_database(args.postgres, prefix="digest_bench")
        engine = open_engine(url)
        try:
            results.append(measure(engine, args.editions, args.readers))
        finally:
            engine.dispose()
            drop_database(args.postgres, url)
    first = results[0]["being_sent"]
    print(json.dumps({"wall_s": first["ours_s"], "speedup_x": first["speedup_x"], "runs": results}))


if __name__ == "__main__":
    main()
