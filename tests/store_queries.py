"""Queries only tests make, kept out of ``Store`` so it holds what the service uses."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from digest.app import App
from digest.records import FeedItem
from digest.store import Article, Edition, Source, Store, open_engine, upgrade, utcnow
from digest.store.ingest import store_items


def add_articles(store: Store, source_id: int, items: Sequence[FeedItem]) -> int:
    """Store one source's items as a gather would (new ones added, changed ones updated);
    count the new."""
    if not items:
        return 0
    with store.engine.begin() as connection:
        return store_items(connection, [(source_id, items)], utcnow())[0].new


def articles_between(
    store: Store, since: datetime, until: datetime, source_names: Iterable[str]
) -> list[tuple[Article, str]]:
    """Articles published in [since, until] by the named sources with the source's name,
    newest first."""
    names = list(source_names)
    with Session(store.engine, expire_on_commit=False) as s:
        rows = s.exec(
            select(Article, Source.name)
            .join(Source, col(Source.id) == col(Article.source_id))
            .where(
                col(Article.published_at) >= since,
                col(Article.published_at) <= until,
                col(Source.name).in_(names),
            )
            .order_by(col(Article.published_at).desc())
        )
        return [(a, n) for a, n in rows]


def every_article(app: App) -> list[tuple[Article, str]]:
    """Every stored article of the config's sources, whatever its date, with its source's
    name, newest first."""
    far = timedelta(days=365 * 50)
    now = datetime.now(UTC)
    return articles_between(app.store, now - far, now + far, [s.name for s in app.config.sources])


def source(store: Store, source_id: int) -> Source | None:
    """One source row with its fetch state."""
    with Session(store.engine, expire_on_commit=False) as s:
        return s.get(Source, source_id)


def reader_address(i: int) -> str:
    """The address ``add_readers`` gives its ``i``-th reader."""
    return f"reader{i:07d}@example.org"


def add_readers(engine: Engine, count: int, chunk: int = 10_000) -> None:
    """``count`` active subscribers written straight into the table, in chunks (memory stays
    flat at a million): what the tests and benchmarks of large lists start from."""
    table = SQLModel.metadata.tables["subscribers"]
    now = utcnow()
    with engine.begin() as connection:
        for start in range(0, count, chunk):
            rows = [
                {
                    "email": reader_address(i),
                    "name": f"Reader {i}",
                    "public_id": secrets.token_urlsafe(12),
                    "status": "active",
                    "topics": "",
                    "created_at": now,
                }
                for i in range(start, min(count, start + chunk))
            ]
            connection.execute(insert(table), rows)


def add_edition(
    store: Store, slot: datetime, views: Mapping[str, str] | None = None, **fields: Any
) -> int:
    """An edition of the "daily" digest for ``slot``, made at it, with stand-in content
    unless ``fields`` (the Edition's) say otherwise, and ``views`` (``save_edition``'s);
    its id."""
    made: dict[str, Any] = {"digest_id": "daily", "slot": slot, "created_at": slot}
    stand_in = {"subject": "s", "html": "h", "text": "t"}
    edition = store.save_edition(Edition(**(made | stand_in | fields)), views)
    assert edition.id is not None
    return edition.id


def delivery_row(
    edition: int, reader: int, status: str, when: datetime, error: str | None = None
) -> dict[str, Any]:
    """A row of the deliveries table as a send leaves it at ``when`` (``sent_at`` set if it
    went out), to write straight into the table."""
    return {
        "edition_id": edition,
        "subscriber_id": reader,
        "status": status,
        "updated_at": when,
        "sent_at": when if status == "sent" else None,
        "error": error,
    }


@contextmanager
def store_with_an_edition(url: str, readers: int) -> Iterator[tuple[Store, int]]:
    """A migrated store at ``url`` with ``readers`` active subscribers and one edition,
    made now and not yet queued: the store and the edition's id (the engine is disposed
    afterwards)."""
    engine = open_engine(url)
    upgrade(engine)
    add_readers(engine, readers)
    store = Store(engine)
    try:
        yield store, add_edition(store, utcnow())
    finally:
        engine.dispose()
