"""The store: migrations build exactly the tables the models declare; SQLite runs in WAL mode."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from digest.config import load_config
from digest.store import current_revision, open_engine, upgrade
from digest.store.engine import _alembic_config, resolve_url
from digest.store.tables import SQLModel
from tests.conftest import run_cli
from tests.store_queries import add_articles, articles_between


def test_migrations_match_the_models_and_are_idempotent(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert current_revision(engine) is None
    upgrade(engine)
    upgrade(engine)  # a second start changes nothing
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert current_revision(engine) == head
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == [], f"models and migrations differ; add a migration: {diff}"


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_a_relative_sqlite_path_is_relative_to_the_config_folder(tmp_path: Path) -> None:
    url = resolve_url("sqlite:///data/digest.db", tmp_path)
    assert url == f"sqlite:///{tmp_path / 'data' / 'digest.db'}"
    assert resolve_url("postgresql+psycopg://u@h/db", tmp_path) == "postgresql+psycopg://u@h/db"


def test_articles_past_retention_are_pruned(tmp_path: Path) -> None:
    from datetime import timedelta

    from digest.records import FeedItem
    from digest.store import Store, utcnow

    engine = open_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    store = Store(engine)
    source = store.sync_sources([("Wire", "https://wire.test/feed")])["Wire"]
    items = [
        FeedItem(f"g{i}", f"https://wire.test/{i}", f"Title {i}", "", None, None) for i in range(3)
    ]
    assert add_articles(store, source, items) == 3
    assert store.prune_articles(utcnow() - timedelta(days=1)) == 0
    assert store.prune_articles(utcnow() + timedelta(seconds=1)) == 3
    assert articles_between(store, utcnow() - timedelta(days=9), utcnow(), ["Wire"]) == []


def test_a_batch_of_fetches_stores_as_if_each_were_saved_alone(tmp_path: Path) -> None:
    from digest.records import FeedItem
    from digest.store import Store
    from digest.store.store import FetchOutcome

    engine = open_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    store = Store(engine)
    ids = store.sync_sources([("A", "https://a.test/feed"), ("B", "https://b.test/feed")])
    a, b = ids["A"], ids["B"]
    store.save_fetches([FetchOutcome(b, (), {}, "HTTP 500 from b.test")])

    def item(guid: str, url: str, title: str) -> FeedItem:
        return FeedItem(guid, url, title, "", None, None)

    counts = store.save_fetches(
        [
            FetchOutcome(
                a,
                [item("1", "https://x.test/1", "One"), item("1", "https://x.test/9", "Dup guid")],
                {"etag": '"a"'},
                None,
                2,
            ),
            # B repeats A's URL (its own copy: identity is per source), then its own
            # content under another link and no guid of its own (the content hash)
            FetchOutcome(
                b,
                [
                    item("7", "https://x.test/1", "Seven"),
                    item("8", "https://x.test/8", "Eight"),
                    item("https://x.test/88", "https://x.test/88", "Eight"),
                ],
                {},
                None,
                3,
            ),
            FetchOutcome(a, [item("2", "https://x.test/2", "Two")], {}, None, 1),
        ]
    )
    assert [stored.new for stored in counts] == [1, 2, 1]
    for _ in range(2):  # failures count up from the success above, in one UPDATE each
        store.save_fetches([FetchOutcome(b, (), {"next_attempt_at": None}, "HTTP 503 from b.test")])
    rows = {row.name: row for row in store.list_sources()}
    assert (rows["A"].etag, rows["A"].consecutive_failures, rows["A"].items_seen) == ('"a"', 0, 1)
    assert rows["A"].last_success_at is not None and rows["A"].last_error is None
    assert (rows["B"].consecutive_failures, rows["B"].last_error) == (2, "HTTP 503 from b.test")


def test_the_bulk_insert_stores_values_as_sqlalchemy_would(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from digest.records import FeedItem
    from digest.store import Store

    engine = open_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    store = Store(engine)
    source = store.sync_sources([("Wire", "https://wire.test/feed")])["Wire"]
    when = datetime(2026, 1, 2, 10, 0, tzinfo=UTC)  # no microseconds: SQLite text differs
    add_articles(store, source, [FeedItem("g1", "https://wire.test/1", "One", "", None, when)])
    articles = SQLModel.metadata.tables["articles"]
    with engine.begin() as connection:
        connection.execute(
            insert(articles),
            [
                {
                    "source_id": source,
                    "guid": "g2",
                    "url": "https://wire.test/2",
                    "title": "Two",
                    "summary": "",
                    "published_at": when,
                    "first_seen_at": when,
                    "breaking": False,
                }
            ],
        )
        rows = connection.execute(
            text("SELECT guid, published_at, breaking FROM articles ORDER BY guid")
        ).all()
    assert rows[0][1:] == rows[1][1:] == ("2026-01-02 10:00:00.000000", 0)


def test_addresses_stored_before_they_had_to_be_ascii_are_migrated(
    tmp_path: Path, write_config: Callable[..., Path]
) -> None:
    """A Unicode domain becomes its punycode form (same mailbox); a Unicode local part, or
    one whose ASCII form is taken, stays as written and can still be removed."""
    import sqlalchemy as sa

    config = write_config([("one", "https://one.example.com/feed")])
    loaded = load_config(config)
    engine = open_engine(resolve_url(loaded.service.database_url, loaded.base_dir))
    upgrade(engine, "0009")
    subscribers = sa.table(
        "subscribers", sa.column("email"), sa.column("public_id"), sa.column("status"),
        sa.column("topics"), sa.column("created_at"),
    )  # fmt: skip
    emails = [
        "ada@bücher.example",
        "zoë@example.org",
        "bo@xn--bcher-kva.example",
        "bo@bücher.example",
    ]
    with engine.begin() as connection:
        for n, email in enumerate(emails):
            connection.execute(
                subscribers.insert().values(
                    email=email, public_id=f"p{n}", status="active", topics="",
                    created_at=datetime(2026, 11, 1, tzinfo=UTC),
                )
            )  # fmt: skip
    upgrade(engine)
    with engine.connect() as connection:
        stored = [r[0] for r in connection.execute(sa.text("SELECT email FROM subscribers"))]
    assert sorted(stored) == sorted(
        [
            "ada@xn--bcher-kva.example",
            "zoë@example.org",
            "bo@xn--bcher-kva.example",
            "bo@bücher.example",
        ]
    )
    engine.dispose()
    code, out, _ = run_cli("--config", str(config), "subscribers", "remove", "Zoë@example.org")
    assert (code, out) == (0, "unsubscribed zoë@example.org\n")


def test_a_saved_row_hands_its_id_and_an_unsaved_one_says_it_was_never_saved(
    tmp_path: Path,
) -> None:
    import pytest

    from digest.store import Edition, Store, utcnow
    from digest.store.base import saved_id

    engine = open_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    now = utcnow()
    edition = Edition(digest_id="daily", slot=now, created_at=now, subject="S", html="", text="")
    with pytest.raises(ValueError, match="Edition has no id: it was never saved"):
        saved_id(edition)
    stored = Store(engine).save_edition(edition)
    assert saved_id(stored) == stored.id == 1
