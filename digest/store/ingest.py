"""Storing a gather's items: which are new, which stored ones their feed has changed, and
which are only seen again (so that pruning keeps what a feed still lists).

Identity is per source. Another source's copy of an article is a row of its own: the
clusterer puts both in one story, so each source's coverage vote and topics count. Within
a source, an item is

- the stored article with the same guid; a changed title, summary or link updates that row
  in place (it keeps its id and its story);
- else the stored article with the same canonical URL (a feed that makes up new guids),
  or with the link the feed wrote when the item's URL is the article's own address behind
  it (``FeedItem.feed_link``: an article stored before origLinks and redirectors were
  read stays known by that link);
- else, for an item without a guid of its own (its guid is its URL), the stored article with
  the same title and summary (a content hash: a feed whose links carry a changing session
  parameter). An item with a guid of its own and a new URL is new, however often its
  headline recurs ("Morning briefing").

A module of the store (all SQL stays in ``store/``), apart from store.py for its size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection

from digest.records import FeedItem
from digest.store.tables import ARTICLES

# last_seen_at is written at most this often per article: a gather that finds its items
# again writes nothing, most of the time. Far below any retention (a whole day at least).
SEEN_EVERY = timedelta(hours=6)
_IN_CHUNK = 500  # values per IN (...) list: well under every backend's limit on parameters
# What an entry's update writes (the id, guid, first_seen_at and story stay).
_UPDATED = ("title", "summary", "url", "content_hash", "modified_at", "last_seen_at")


def content_hash(item: FeedItem) -> str:
    """Identity of last resort: the item's normalised title and summary."""
    text = " ".join(f"{item.title}\x00{item.summary}".casefold().split())
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ArticleUpdate:
    """A stored article whose entry changed in its feed (same guid): what changed, and how
    it was titled before, for the log line."""

    article_id: int
    old_title: str
    title: str
    changed: tuple[str, ...]  # of "title", "summary", "url"


@dataclass(frozen=True)
class ItemsStored:
    """What storing one fetch's items did: how many were new, which stored ones changed."""

    new: int = 0
    updated: tuple[ArticleUpdate, ...] = ()
    # The ids of every stored article the fetch listed (new, changed or only seen again):
    # what a later 304 means is still listed.
    listed: tuple[int, ...] = ()


@dataclass(frozen=True)
class _Row:
    """A stored article as the look-ups see it (title, summary, url only from the guids')."""

    id: int
    last_seen_at: datetime | None
    url: str = ""
    title: str = ""
    summary: str = ""


_TAKEN = _Row(-1, None)  # stored or matched earlier in this same call: nothing more to do


def store_items(
    connection: Connection, batches: Sequence[tuple[int, Sequence[FeedItem]]], now: datetime
) -> list[ItemsStored]:
    """Insert the new items, update the changed ones, note when the others were seen.

    One look-up by guid for the whole list, then by URL and by content hash only for the
    items the guids did not place, one multi-row insert and a few executemany updates:
    Core, not ORM objects, and not a query per source, since a gather stores thousands of
    rows (bench/gather.py). Batches are taken in order, so a later one sees what an earlier
    one did, as if each were stored on its own. Dates are clamped: an item without a date,
    or dated in the future, counts from now.
    """
    hashed = [
        (source_id, [(item, content_hash(item)) for item in items]) for source_id, items in batches
    ]
    ids = sorted({source_id for source_id, items in hashed if items})
    if not ids:
        return [ItemsStored() for _ in batches]
    plan = _plan(connection, ids, hashed, now)
    listings = [_Listing() for _ in hashed]
    for (source_id, items), listing in zip(hashed, listings, strict=True):
        for item, digest in items:
            plan.place(source_id, item, digest, listing)
    plan.write(connection)
    new_guids = {guid for listing in listings for _, guid in listing.new_keys}
    inserted = _by_guid(connection, ARTICLES, ids, new_guids) if plan.rows else {}
    return [listing.stored(inserted) for listing in listings]


@dataclass
class _Listing:
    """One fetch's share of a ``_Plan``: its counts, and the articles it listed (stored
    ones by id, new ones by (source, guid) until the insert gives them ids)."""

    new: int = 0
    updated: list[ArticleUpdate] = field(default_factory=list)
    known_ids: list[int] = field(default_factory=list)
    new_keys: list[tuple[int, str]] = field(default_factory=list)

    def stored(self, inserted: Mapping[tuple[int, str], _Row]) -> ItemsStored:
        """The fetch's outcome, its new articles' ids read from ``inserted``."""
        new_ids = tuple(inserted[key].id for key in self.new_keys if key in inserted)
        return ItemsStored(self.new, tuple(self.updated), tuple(self.known_ids) + new_ids)


@dataclass
class _Plan:
    """What storing a gather's items comes to, decided item by item against the look-ups
    and then written in a few statements: rows to insert, entries to update, articles
    only seen again."""

    now: datetime
    by_guid: dict[tuple[int, str], _Row]
    by_url: dict[tuple[int, str], _Row]
    by_hash: dict[tuple[int, str], _Row]
    rows: list[dict[str, object]] = field(default_factory=list)
    changes: list[dict[str, object]] = field(default_factory=list)
    seen: list[int] = field(default_factory=list)

    def place(self, source_id: int, item: FeedItem, digest: str, listing: _Listing) -> None:
        """One item: new (a row to insert), a changed entry (an update), seen again, or a
        second copy of one placed already in this call (nothing more to do)."""
        guid = (source_id, item.guid)
        known = self.by_guid.get(guid)
        same_entry = known is not None  # the same guid: its text may have changed
        if known is None:
            known = self.by_url.get((source_id, item.url))
        if known is None and item.feed_link:
            known = self.by_url.get((source_id, item.feed_link))
        if known is None and not _has_own_guid(item):
            known = self.by_hash.get((source_id, digest))
        self.by_guid[guid] = _TAKEN  # a second copy in the same fetch is the same article
        if known is _TAKEN:
            return
        if known is None:
            self.rows.append(_new_row(source_id, item, digest, self.now))
            self.by_url[(source_id, item.url)] = self.by_hash[(source_id, digest)] = _TAKEN
            if item.feed_link:
                self.by_url[(source_id, item.feed_link)] = _TAKEN
            listing.new_keys.append(guid)
            listing.new += 1
            return
        listing.known_ids.append(known.id)
        if same_entry and (change := _changed(known, item)):
            self.changes.append(_update_params(known, item, digest, self.now))
            listing.updated.append(ArticleUpdate(known.id, known.title, item.title, change))
            self.by_url[(source_id, item.url)] = _TAKEN
        elif known.last_seen_at is None or known.last_seen_at <= self.now - SEEN_EVERY:
            self.seen.append(known.id)

    def write(self, connection: Connection) -> None:
        """The plan's statements: one multi-row insert, one executemany of the changed
        entries, one UPDATE per chunk of the articles seen again."""
        if self.rows:
            _insert_many(connection, ARTICLES, self.rows)
        if self.changes:
            connection.execute(
                update(ARTICLES)
                .where(ARTICLES.c.id == bindparam("row_id"))
                .values({k: bindparam(f"new_{k}") for k in _UPDATED}),
                self.changes,
            )
        for chunk in in_chunks(self.seen):
            connection.execute(
                update(ARTICLES).where(ARTICLES.c.id.in_(chunk)).values(last_seen_at=self.now)
            )


def _plan(
    connection: Connection,
    ids: list[int],
    hashed: Sequence[tuple[int, Sequence[tuple[FeedItem, str]]]],
    now: datetime,
) -> _Plan:
    """An empty plan with the look-ups: every item's guid, then the URLs and content hashes
    of the items the guids did not place."""
    by_guid = _by_guid(connection, ARTICLES, ids, {i.guid for _, items in hashed for i, _ in items})
    rest = [(s, i, d) for s, items in hashed for i, d in items if (s, i.guid) not in by_guid]
    urls = {u for _, i, _ in rest for u in (i.url, i.feed_link) if u}
    by_url = _look_up(connection, ARTICLES, "url", ids, urls)
    no_guid = {d for _, i, d in rest if not _has_own_guid(i)}
    by_hash = _look_up(connection, ARTICLES, "content_hash", ids, no_guid)
    return _Plan(now, by_guid, by_url, by_hash)


def _has_own_guid(item: FeedItem) -> bool:
    """False when the reader made the guid from the link (the entry had no id)."""
    return item.guid not in (item.url, item.feed_link)


def _changed(known: _Row, item: FeedItem) -> tuple[str, ...]:
    """Which of title, summary and link the feed changed in the entry stored as ``known``."""
    pairs = (("title", known.title, item.title), ("summary", known.summary, item.summary))
    changed = tuple(name for name, old, new in pairs if old != new)
    return changed + (("url",) if known.url != item.url else ())


def _update_params(known: _Row, item: FeedItem, digest: str, now: datetime) -> dict[str, object]:
    return {
        "row_id": known.id,
        "new_title": item.title,
        "new_summary": item.summary,
        "new_url": item.url,
        "new_content_hash": digest,
        "new_modified_at": item.modified_at or now,  # a feed's own date, else when seen
        "new_last_seen_at": now,
    }


def _new_row(source_id: int, item: FeedItem, digest: str, now: datetime) -> dict[str, object]:
    published = item.published_at if item.published_at and item.published_at <= now else now
    return {
        "source_id": source_id,
        "guid": item.guid,
        "url": item.url,
        "title": item.title,
        "summary": item.summary,
        "author": item.author,
        "published_at": published,
        "first_seen_at": now,
        "last_seen_at": now,
        "modified_at": item.modified_at,
        "image_url": item.image_url,
        "image_alt": item.image_alt,
        "image_width": item.image_width,
        "image_height": item.image_height,
        "language": item.language,
        "section": item.section,
        "breaking": item.breaking,
        "content_hash": digest,
    }


def in_chunks(values: Collection[object]) -> Iterable[list[object]]:
    """``values`` in lists short enough for one IN (...) on every backend."""
    listed = list(values)
    for start in range(0, len(listed), _IN_CHUNK):
        yield listed[start : start + _IN_CHUNK]


def _by_guid(
    connection: Connection, table: Table, ids: list[int], guids: set[str]
) -> dict[tuple[int, str], _Row]:
    """The stored articles of these sources with these guids, with what an update compares."""
    found: dict[tuple[int, str], _Row] = {}
    c = table.c
    for chunk in in_chunks(guids):
        query = select(c.source_id, c.guid, c.id, c.last_seen_at, c.url, c.title, c.summary)
        for source_id, guid, *row in connection.execute(
            query.where(c.source_id.in_(ids), c.guid.in_(chunk))
        ):
            found[(source_id, guid)] = _Row(*row)
    return found


def _look_up(
    connection: Connection, table: Table, column: str, ids: list[int], values: set[str]
) -> dict[tuple[int, str], _Row]:
    """The stored articles of these sources whose ``column`` holds one of these values."""
    found: dict[tuple[int, str], _Row] = {}
    c = table.c
    for chunk in in_chunks(values):
        query = select(c.source_id, c[column], c.id, c.last_seen_at)
        for source_id, value, row_id, seen in connection.execute(
            query.where(c.source_id.in_(ids), c[column].in_(chunk))
        ):
            found[(source_id, value)] = _Row(row_id, seen)
    return found


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
