"""Story queries: the articles a rank run clusters, their stored story ids, earlier editions.

A mixin of ``Store`` (kept apart so store.py stays readable); all SQL stays in ``store/``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    bindparam,
    delete,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.engine import Connection

from digest.records import ArticleRecord, EarlierEditions, EarlierStored
from digest.store.base import StoreBase
from digest.store.delivery_rows import BEING_SENT
from digest.store.tables import (
    ARTICLES,
    EDITION_VIEWS,
    EDITIONS,
    SOURCES,
)


class StoryQueries(StoreBase):
    """The queries of the rank stage (``Store`` inherits them)."""

    def window_articles(
        self, since: datetime, until: datetime, source_names: Iterable[str]
    ) -> list[ArticleRecord]:
        """Articles published in [since, until] by the named sources, oldest first seen first,
        with their story ids (source weights and topics are the config's, left at defaults).

        Oldest first is the order a StoryIndex wants them in: a story is named by its first
        article. Core, not ORM rows: a window holds thousands of articles.
        """
        names = list(source_names)
        if not names:
            return []
        query = (
            select(
                ARTICLES.c.id,
                SOURCES.c.name.label("source"),
                ARTICLES.c.title,
                ARTICLES.c.url,
                ARTICLES.c.summary,
                ARTICLES.c.published_at,
                ARTICLES.c.first_seen_at,
                ARTICLES.c.breaking,
                ARTICLES.c.image_url,
                ARTICLES.c.image_alt,
                ARTICLES.c.image_width,
                ARTICLES.c.image_height,
                ARTICLES.c.story_id,
                ARTICLES.c.language,
            )
            .join(SOURCES, SOURCES.c.id == ARTICLES.c.source_id)
            .where(
                ARTICLES.c.published_at >= since,
                ARTICLES.c.published_at <= until,
                SOURCES.c.name.in_(names),
            )
            .order_by(ARTICLES.c.first_seen_at, ARTICLES.c.id)
        )
        with self.engine.connect() as connection:
            return [ArticleRecord(**row) for row in connection.execute(query).mappings()]

    def article_counts(
        self, since: datetime | None, until: datetime, source_names: Iterable[str]
    ) -> dict[str, tuple[int, datetime]]:
        """Per named source: how many of its articles were published in [since, until)
        (since None: any time before until), and the newest one's date. What a window left
        out, for the admin reading `explain` or `preview`."""
        names = list(source_names)
        if not names:
            return {}
        query = (
            select(SOURCES.c.name, func.count(), func.max(ARTICLES.c.published_at))
            .join(SOURCES, SOURCES.c.id == ARTICLES.c.source_id)
            .where(ARTICLES.c.published_at < until, SOURCES.c.name.in_(names))
            .group_by(SOURCES.c.name)
        )
        if since is not None:
            query = query.where(ARTICLES.c.published_at >= since)
        with self.engine.connect() as connection:  # max() keeps the column's type: aware UTC
            return {name: (int(n), newest) for name, n, newest in connection.execute(query)}

    def save_story_ids(self, assignments: Mapping[int, int]) -> int:
        """Store article id -> story id; count them.

        Pass only the ids that changed: a run re-clusters its whole story memory, and
        rewriting thousands of unchanged rows would cost a write each for nothing.
        """
        if not assignments:
            return 0
        rows = [{"row_id": a, "new_story": s} for a, s in assignments.items()]
        with self.engine.begin() as connection:
            connection.execute(
                update(ARTICLES)
                .where(ARTICLES.c.id == bindparam("row_id"))
                .values(story_id=bindparam("new_story")),
                rows,
            )
        return len(rows)

    def earlier_stored(
        self, earlier: EarlierEditions, keys: Iterable[str] = (), *, viewed: bool = False
    ) -> EarlierStored:
        """The ``earlier`` editions that carried stories (``_earlier`` says which), as
        stored: their stories, and the views (``save_edition``'s) of the choices of topics
        ``keys`` they hold, found by one read of their ids. ``viewed``: the stories only
        of the editions holding one of those views (a choice's memory reads no other)."""
        wanted = sorted(set(keys))
        views: dict[str, dict[int, str]] = {key: {} for key in wanted}
        with self.engine.connect() as connection:
            ids = _earlier_ids(connection, earlier)
            if wanted and ids:
                rows = select(
                    EDITION_VIEWS.c.topic_key, EDITION_VIEWS.c.edition_id, EDITION_VIEWS.c.view
                ).where(EDITION_VIEWS.c.topic_key.in_(wanted), EDITION_VIEWS.c.edition_id.in_(ids))
                for key, edition_id, view in connection.execute(rows):
                    views[key][edition_id] = view
            if viewed:
                ids = {edition_id for of_key in views.values() for edition_id in of_key}
            found: dict[int, str] = {}
            if ids:
                query = select(EDITIONS.c.id, EDITIONS.c.stories).where(EDITIONS.c.id.in_(ids))
                found = {i: stories for i, stories in connection.execute(query)}
        return EarlierStored({i: found[i] for i in sorted(found, reverse=True)}, views)

    def editions_being_sent(self) -> list[tuple[str, datetime, datetime]]:
        """Each edition with a message still to send, of any digest, as (digest id, slot,
        built at): its send may yet read the views of the editions before it."""
        query = select(EDITIONS.c.digest_id, EDITIONS.c.slot, EDITIONS.c.created_at).where(
            BEING_SENT
        )
        with self.engine.connect() as connection:
            return [(d, slot, at) for d, slot, at in connection.execute(query)]

    def earlier_edition_ids(self, earlier: EarlierEditions) -> set[int]:
        """The ids of the ``earlier`` editions (as ``earlier_stored`` reads them)."""
        with self.engine.connect() as connection:
            return _earlier_ids(connection, earlier)

    def prune_edition_views(
        self,
        digest_id: str,
        before: datetime,
        keep: int,
        spare: Iterable[int] = (),
        without_extra: Callable[[str], str | None] | None = None,
    ) -> tuple[int, int]:
        """Delete the stored own editions of choices of topics (``save_edition``'s views)
        of the digest's editions whose slot is before ``before``, but its last ``keep``
        that carried stories, any with a message still to send (a send renders its
        choices' views) and those of the editions ``spare`` (that a send's fallback reads):
        no later build reads them (``earlier_stored``). The stories of an edition whose
        views all went (none left: one owed again meanwhile keeps them) are rewritten
        ``without_extra`` (its stories JSON less what only its views showed; None: it
        has none), in the same transaction: nothing reads them without a view (a send or
        web view of a choice without one reads the edition's own). How many views went,
        and how many editions' stories were rewritten."""
        kept = (
            select(EDITIONS.c.id)
            .where(
                EDITIONS.c.digest_id == digest_id,
                EDITIONS.c.stories != "",
                EDITIONS.c.story_count > 0,
            )
            .order_by(EDITIONS.c.slot.desc())
            .limit(max(keep, 1))
        )
        old = select(EDITIONS.c.id).where(
            EDITIONS.c.digest_id == digest_id, EDITIONS.c.slot < before, ~BEING_SENT
        )
        rewritten = 0
        with self.engine.begin() as connection:
            keep_ids = list(connection.execute(kept).scalars())
            prunable = and_(
                EDITION_VIEWS.c.edition_id.in_(old.scalar_subquery()),
                EDITION_VIEWS.c.edition_id.not_in([*keep_ids, *spare]),
            )
            emptied = list(
                connection.execute(
                    select(EDITION_VIEWS.c.edition_id).where(prunable).distinct()
                ).scalars()
            )
            result = connection.execute(delete(EDITION_VIEWS).where(prunable))
            # Not one whose views the delete left (it re-read which editions are owed: one
            # put back to send since `emptied` was read keeps them, and needs its extra).
            viewed = exists().where(EDITION_VIEWS.c.edition_id == EDITIONS.c.id)
            if without_extra is not None and emptied:
                query = select(EDITIONS.c.id, EDITIONS.c.stories).where(EDITIONS.c.id.in_(emptied))
                for edition_id, stories in connection.execute(query).all():
                    cleared = without_extra(stories)
                    if cleared is None:
                        continue
                    done = connection.execute(
                        update(EDITIONS)
                        .where(
                            EDITIONS.c.id == edition_id,
                            EDITIONS.c.stories == stories,
                            ~viewed,
                        )
                        .values(stories=cleared)
                    )
                    rewritten += int(done.rowcount or 0)
        return int(result.rowcount or 0), rewritten


def _earlier_ids(connection: Connection, earlier: EarlierEditions) -> set[int]:
    """The ids of the ``earlier`` editions (``_earlier``'s queries, run)."""
    ids: set[int] = set()
    for query in _earlier(earlier):
        ids.update(connection.execute(query).scalars())
    return ids


def _earlier(earlier: EarlierEditions) -> list[Select[Any]]:
    """The queries of the ids of the ``earlier`` editions that carried stories: the
    digest's last ``limit`` before ``before``, every one whose slot is at or after
    ``since`` too, with those of the ``others`` digests (their slot may be ``before``
    itself); with ``slots``, only the digest's editions of those slots (a local-time
    digest's bucket). None when ``limit`` is 0."""
    digest_id, before, slots, since, others = (
        earlier.digest_id,
        earlier.before,
        earlier.slots,
        earlier.since,
        earlier.others,
    )
    if earlier.limit <= 0:
        return []
    carried = (EDITIONS.c.stories != "", EDITIONS.c.story_count > 0)
    own = select(EDITIONS.c.id).where(
        EDITIONS.c.digest_id == digest_id, EDITIONS.c.slot < before, *carried
    )
    if slots is not None:
        own = own.where(EDITIONS.c.slot.in_(list(slots)))
    queries = [
        own.order_by(EDITIONS.c.slot.desc()).limit(earlier.limit),
        own.where(EDITIONS.c.slot >= since),
    ]
    if others:
        queries.append(
            # another digest's edition of the same slot, if built, was built first
            select(EDITIONS.c.id).where(
                EDITIONS.c.digest_id.in_(list(others)),
                EDITIONS.c.slot >= since,
                EDITIONS.c.slot <= before,
                *carried,
            )
        )
    return queries
