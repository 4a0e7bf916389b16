"""Every query digest makes, in one place: stages and commands call these, never select()."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, delete, insert, update
from sqlalchemy import select as core_select
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel, col, select

from digest.records import FeedItem
from digest.store.deliveries import DeliveryQueries
from digest.store.stories import StoryQueries
from digest.store.subscribers import SubscriberQueries
from digest.store.tables import (
    Article,
    Source,
    utcnow,
)


def content_hash(item: FeedItem) -> str:
    """Identity of last resort: the item's normalised title and summary."""
    text = " ".join(f"{item.title}\x00{item.summary}".casefold().split())
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SourceState:
    """A source's fetch state as the gatherer reads it (a plain record, not an ORM row)."""

    id: int
    name: str
    url: str
    fetch_url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    status: str = "active"
    next_attempt_at: datetime | None = None
    consecutive_failures: int = 0
    last_error: str | None = None
    items_seen: int = 0


@dataclass(frozen=True)
class FetchOutcome:
    """What one fetch of one source brought: new items, fetch-state changes, or an error."""

    source_id: int
    items: Sequence[FeedItem] = ()
    changes: Mapping[str, object] = field(default_factory=dict)
    error: str | None = None
    items_seen: int = 0


class Store(StoryQueries, SubscriberQueries, DeliveryQueries):
    """The database, seen through the operations the pipeline and the CLI need."""

    # --- sources ---------------------------------------------------------------------------

    def sync_sources(self, sources: Iterable[tuple[str, str]]) -> dict[str, int]:
        """Make a row for every configured (name, url); return name -> id.

        When the configured URL changes, the fetch state learnt from the old one (a
        redirect target, validators, 'gone', backoff) is forgotten. Core statements: a
        gather of hundreds of sources runs this every time.
        """
        table = SQLModel.metadata.tables["sources"]
        wanted = dict(sources)
        with self.engine.begin() as connection:
            known = {
                name: (source_id, url)
                for source_id, name, url in connection.execute(
                    core_select(table.c.id, table.c.name, table.c.url)
                )
            }
            new = [
                {
                    "name": name,
                    "url": url,
                    "status": "active",
                    "consecutive_failures": 0,
                    "items_seen": 0,
                }
                for name, url in wanted.items()
                if name not in known
            ]
            if new:
                connection.execute(insert(table), new)
            for name, url in wanted.items():
                if name in known and known[name][1] != url:
                    connection.execute(
                        update(table)
                        .where(table.c.id == known[name][0])
                        .values(
                            url=url,
                            fetch_url=None,
                            etag=None,
                            last_modified=None,
                            status="active",
                            next_attempt_at=None,
                            consecutive_failures=0,
                        )
                    )
            rows = connection.execute(core_select(table.c.name, table.c.id))
            return {name: source_id for name, source_id in rows}

    def source_states(self) -> dict[int, SourceState]:
        """Every source's fetch state by id, as light records (one query per gather)."""
        table = SQLModel.metadata.tables["sources"]
        fields = [f.name for f in dataclasses.fields(SourceState)]
        with self.engine.connect() as connection:
            rows = connection.execute(core_select(*(table.c[f] for f in fields)))
            return {row.id: SourceState(*row) for row in rows}

    def source(self, source_id: int) -> Source | None:
        """One source row: its fetch state (fetch_url, validators, status, backoff)."""
        with self.session() as s:
            return s.get(Source, source_id)

    def update_source(self, source_id: int, **changes: object) -> None:
        """Set fetch-state columns of a source (fetch_url, etag, last_modified, status, ...)."""
        with self.session() as s:
            row = s.get(Source, source_id)
            if row is None:
                return
            for key, value in changes.items():
                if not hasattr(row, key):
                    raise AttributeError(f"sources has no column {key!r}")
                setattr(row, key, value)
            s.add(row)
            s.commit()

    def record_fetch(
        self, source_id: int, *, error: str | None = None, items_seen: int = 0
    ) -> None:
        """Note one fetch attempt's outcome in the source's health columns."""
        self.finish_fetch(source_id, error=error, items_seen=items_seen)

    def finish_fetch(
        self,
        source_id: int,
        changes: Mapping[str, object] | None = None,
        *,
        error: str | None = None,
        items_seen: int = 0,
    ) -> None:
        """One fetch's outcome (as record_fetch) and fetch-state changes, in one transaction."""
        self.save_fetches([FetchOutcome(source_id, (), changes or {}, error, items_seen)])

    def save_fetches(self, outcomes: Sequence[FetchOutcome]) -> list[int]:
        """Many fetches' new articles and health, in one transaction; new articles per outcome.

        A gather of hundreds of sources writes in batches through this: a handful of
        statements per batch (the look-ups, one multi-row insert, one executemany UPDATE per
        shape of change), not several per source; statement compilation dominated before.
        """
        now = utcnow()
        sources = SQLModel.metadata.tables["sources"]
        for outcome in outcomes:
            unknown = set(outcome.changes) - set(sources.c.keys())
            if unknown:
                raise AttributeError(f"sources has no column {sorted(unknown)!r}")
        with self.engine.begin() as connection:
            added = _insert_new(connection, [(o.source_id, o.items) for o in outcomes], now)
            _update_health(connection, outcomes, now)
        return added

    def known_urls(self, urls: Iterable[str]) -> set[str]:
        """Which of these canonical URLs are stored already (a page source skips them)."""
        wanted = list(set(urls))
        if not wanted:
            return set()
        with self.session() as s:
            return set(s.exec(select(Article.url).where(col(Article.url).in_(wanted))))

    def list_sources(self) -> list[Source]:
        """Every source row with its health, by name."""
        with self.session() as s:
            return list(s.exec(select(Source).order_by(col(Source.name))))

    # --- articles --------------------------------------------------------------------------

    def add_articles(self, source_id: int, items: Sequence[FeedItem]) -> int:
        """Store the items not seen before; count them.

        Identity: the same guid from this source, else the same canonical URL from any
        source, else the same title and summary from this source (content hash). Dates are
        clamped: an item without a date, or dated in the future, counts from now.
        """
        if not items:
            return 0
        with self.engine.begin() as connection:
            return _insert_new(connection, [(source_id, items)], utcnow())[0]

    def prune_articles(self, older_than: datetime) -> int:
        """Delete articles first seen before ``older_than``; return how many went."""
        with self.session() as s:
            result = s.execute(delete(Article).where(col(Article.first_seen_at) < older_than))
            s.commit()
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def articles_between(
        self, since: datetime, until: datetime, source_names: Iterable[str]
    ) -> list[tuple[Article, str]]:
        """Articles published in [since, until] by the named sources, with the source name."""
        names = list(source_names)
        with self.session() as s:
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


# --- a gather's batched writes -----------------------------------------------------------------

_IN_CHUNK = 500  # values per IN (...) list: well under every backend's limit on parameters


def _chunks(values: Collection[object]) -> Iterable[list[object]]:
    listed = list(values)
    for start in range(0, len(listed), _IN_CHUNK):
        yield listed[start : start + _IN_CHUNK]


def _insert_new(
    connection: Connection,
    batches: Sequence[tuple[int, Sequence[FeedItem]]],
    now: datetime,
) -> list[int]:
    """Insert the items not stored yet (see Store.add_articles); count them per batch.

    Three look-ups for the whole list (guids and content hashes per source, URLs across all
    sources) and one multi-row insert: Core, not ORM objects, and not a query per source,
    since a gather stores thousands of rows (bench/gather.py). Batches are taken in order, so
    a later one sees what an earlier one added, as if each were stored on its own.
    """
    table = SQLModel.metadata.tables["articles"]
    hashed = [
        (source_id, [(item, content_hash(item)) for item in items]) for source_id, items in batches
    ]
    source_ids = {source_id for source_id, items in hashed if items}
    if not source_ids:
        return [0] * len(batches)
    guids = {item.guid for _, items in hashed for item, _ in items}
    urls = {item.url for _, items in hashed for item, _ in items}
    hashes = {digest for _, items in hashed for _, digest in items}
    known_urls: set[str] = set()
    known_guids: set[tuple[int, str]] = set()
    known_hashes: set[tuple[int, str]] = set()
    ids = list(source_ids)
    for chunk in _chunks(urls):
        known_urls.update(
            connection.execute(core_select(table.c.url).where(table.c.url.in_(chunk))).scalars()
        )
    for chunk in _chunks(guids):
        known_guids.update(
            (sid, guid)
            for sid, guid in connection.execute(
                core_select(table.c.source_id, table.c.guid).where(
                    table.c.source_id.in_(ids), table.c.guid.in_(chunk)
                )
            )
        )
    for chunk in _chunks(hashes):
        known_hashes.update(
            (sid, digest)
            for sid, digest in connection.execute(
                core_select(table.c.source_id, table.c.content_hash).where(
                    table.c.content_hash.in_(chunk)
                )
            )
        )
    rows: list[dict[str, object]] = []
    counts = []
    for source_id, items in hashed:
        before = len(rows)
        for item, digest in items:
            guid, url = (source_id, item.guid), item.url
            if guid in known_guids or url in known_urls or (source_id, digest) in known_hashes:
                continue
            known_guids.add(guid)
            known_urls.add(url)
            known_hashes.add((source_id, digest))
            published = item.published_at if item.published_at and item.published_at <= now else now
            rows.append(
                {
                    "source_id": source_id,
                    "guid": item.guid,
                    "url": item.url,
                    "title": item.title,
                    "summary": item.summary,
                    "author": item.author,
                    "published_at": published,
                    "first_seen_at": now,
                    "modified_at": item.modified_at,
                    "image_url": item.image_url,
                    "image_alt": item.image_alt,
                    "language": item.language,
                    "section": item.section,
                    "breaking": item.breaking,
                    "content_hash": digest,
                }
            )
        counts.append(len(rows) - before)
    if rows:
        _insert_many(connection, table, rows)
    return counts


def _insert_many(connection: Connection, table: Table, rows: list[dict[str, object]]) -> None:
    """``connection.execute(insert(table), rows)``, with less work per row.

    The statement is compiled once for the dialect and the rows go to the driver's
    executemany after only each column type's own bind conversion for that dialect (the
    same as SQLAlchemy's: UTCDateTime to SQLite's text form, booleans), since SQLAlchemy's
    generic per-row parameter processing cost more than SQLite's insert. Every row has the
    keys of the first; values are hashable (converted once per distinct value).
    """
    dialect = connection.dialect
    keys = list(rows[0])
    compiled = insert(table).compile(dialect=dialect, column_keys=keys)
    positional = compiled.positiontup is not None
    order = list(compiled.positiontup) if compiled.positiontup is not None else keys
    converters = [
        (i, processor)
        for i, key in enumerate(order)
        if (processor := table.c[key].type.dialect_impl(dialect).bind_processor(dialect))
        is not None
    ]
    # A batch repeats values (first_seen_at is one "now", modified_at mostly None): each
    # distinct value is converted once.
    converted: list[dict[Any, Any]] = [{} for _ in converters]
    params: list[Any] = []
    for row in rows:
        values = [row[key] for key in order]
        for (i, processor), done in zip(converters, converted, strict=True):
            value = values[i]
            if value in done:
                values[i] = done[value]
            else:
                values[i] = done[value] = processor(value)
        params.append(tuple(values) if positional else dict(zip(order, values, strict=True)))
    connection.exec_driver_sql(compiled.string, params)


def _update_health(connection: Connection, outcomes: Sequence[FetchOutcome], now: datetime) -> None:
    """Each outcome's fetch-state changes and health columns: one executemany per shape.

    Outcomes that change the same columns share one compiled UPDATE (a gather of unchanged
    feeds is one statement for the whole batch, not one compiled per source).
    """
    sources = SQLModel.metadata.tables["sources"]
    groups: dict[tuple[bool, tuple[str, ...]], list[dict[str, object]]] = {}
    for outcome in outcomes:
        values: dict[str, object] = {**outcome.changes, "last_attempt_at": now}
        if outcome.error is None:
            values.update(
                last_success_at=now,
                consecutive_failures=0,
                last_error=None,
                items_seen=outcome.items_seen,
            )
        else:
            values["last_error"] = outcome.error
        failed = outcome.error is not None
        groups.setdefault((failed, tuple(sorted(values))), []).append(
            {"_source_id": outcome.source_id, **values}
        )
    for (failed, _), params in groups.items():
        statement = update(sources).where(sources.c.id == bindparam("_source_id"))
        if failed:
            statement = statement.values(consecutive_failures=sources.c.consecutive_failures + 1)
        connection.execute(statement, params)
