"""Story queries: the articles a rank run clusters, their stored story ids, earlier editions.

A mixin of ``Store`` (kept apart so store.py stays readable); all SQL stays in ``store/``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlmodel import SQLModel

from digest.records import ArticleRecord
from digest.store.base import StoreBase


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
        articles = SQLModel.metadata.tables["articles"]
        sources = SQLModel.metadata.tables["sources"]
        names = list(source_names)
        if not names:
            return []
        query = (
            select(
                articles.c.id,
                sources.c.name.label("source"),
                articles.c.title,
                articles.c.url,
                articles.c.summary,
                articles.c.published_at,
                articles.c.first_seen_at,
                articles.c.breaking,
                articles.c.image_url,
                articles.c.image_alt,
                articles.c.story_id,
                articles.c.language,
            )
            .join(sources, sources.c.id == articles.c.source_id)
            .where(
                articles.c.published_at >= since,
                articles.c.published_at <= until,
                sources.c.name.in_(names),
            )
            .order_by(articles.c.first_seen_at, articles.c.id)
        )
        with self.engine.connect() as connection:
            return [ArticleRecord(**row) for row in connection.execute(query).mappings()]

    def article_counts(
        self, since: datetime | None, until: datetime, source_names: Iterable[str]
    ) -> dict[str, tuple[int, datetime]]:
        """Per named source: how many of its articles were published in [since, until)
        (since None: any time before until), and the newest one's date. What a window left
        out, for the admin reading `explain` or `preview`."""
        articles = SQLModel.metadata.tables["articles"]
        sources = SQLModel.metadata.tables["sources"]
        names = list(source_names)
        if not names:
            return {}
        query = (
            select(sources.c.name, func.count(), func.max(articles.c.published_at))
            .join(sources, sources.c.id == articles.c.source_id)
            .where(articles.c.published_at < until, sources.c.name.in_(names))
            .group_by(sources.c.name)
        )
        if since is not None:
            query = query.where(articles.c.published_at >= since)
        with self.engine.connect() as connection:  # max() keeps the column's type: aware UTC
            return {name: (int(n), newest) for name, n, newest in connection.execute(query)}

    def save_story_ids(self, assignments: Mapping[int, int]) -> int:
        """Store article id -> story id; count them.

        Pass only the ids that changed: a run re-clusters its whole story memory, and
        rewriting thousands of unchanged rows would cost a write each for nothing.
        """
        if not assignments:
            return 0
        articles = SQLModel.metadata.tables["articles"]
        rows = [{"row_id": a, "new_story": s} for a, s in assignments.items()]
        with self.engine.begin() as connection:
            connection.execute(
                update(articles)
                .where(articles.c.id == bindparam("row_id"))
                .values(story_id=bindparam("new_story")),
                rows,
            )
        return len(rows)

    def edition_stories(
        self,
        digest_id: str,
        before: datetime,
        limit: int,
        slots: Sequence[datetime] | None = None,
    ) -> list[str]:
        """The stories JSON of the digest's last ``limit`` editions before ``before``, newest
        first; with ``slots``, only editions of those slots (a local-time digest's bucket)."""
        if limit <= 0:
            return []
        editions = SQLModel.metadata.tables["editions"]
        query = select(editions.c.stories).where(
            editions.c.digest_id == digest_id, editions.c.slot < before, editions.c.stories != ""
        )
        if slots is not None:
            query = query.where(editions.c.slot.in_(list(slots)))
        query = query.order_by(editions.c.slot.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [row[0] for row in connection.execute(query)]
