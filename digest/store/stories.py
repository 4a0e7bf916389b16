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
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from digest.records import ArticleRecord, EarlierEditions, EarlierStored
from digest.states import FINAL_DELIVERY_STATES
from digest.store.base import StoreBase
from digest.store.ingest import in_chunks
from digest.store.tables import (
    ARTICLES,
    DELIVERIES,
    EDITION_VIEWS,
    EDITIONS,
    SOURCE_HABITS,
    SOURCE_PAIRS,
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

    def source_habits(
        self, sources: Iterable[str]
    ) -> tuple[dict[str, tuple[int, int]], datetime | None, dict[tuple[str, str], int]]:
        """The named sources' kept habits: each one's (stories, articles) over the settled
        stories tallied so far, up to when stories are tallied (None: nothing yet), and
        each pair of them's stories carried together.

        Only the named sources (a ranking names those configured now): a source removed
        or renamed keeps its rows (away for a week, it comes back with its tally; until
        ``forget_source_habits``), but
        its pairs must not weigh in the others' breadth at once, and the pairs read grow
        with the square of the sources named, not of every source ever seen. ``until`` is
        every row's (the same on each, ``save_source_habits``): a tally of none of the
        named sources is still a tally saved, which a first save must not count twice.

        ``until`` and the counts come from one statement (the one-row max joined to the
        named rows, a row of nulls when none is stored), so a save committing meanwhile
        cannot pair an old ``until`` with its new counts: the next tally would count its
        stories again. On PostgreSQL the pairs are read in the same REPEATABLE READ
        snapshot too (each statement of a READ COMMITTED transaction sees the latest)."""
        names = list(sources)
        tallied = select(func.max(SOURCE_HABITS.c.tallied_until).label("until")).subquery()
        query = select(
            tallied.c.until,
            SOURCE_HABITS.c.source,
            SOURCE_HABITS.c.stories,
            SOURCE_HABITS.c.articles,
        ).select_from(tallied.outerjoin(SOURCE_HABITS, SOURCE_HABITS.c.source.in_(names)))
        pairs = select(SOURCE_PAIRS.c.source, SOURCE_PAIRS.c.other, SOURCE_PAIRS.c.stories).where(
            SOURCE_PAIRS.c.source.in_(names), SOURCE_PAIRS.c.other.in_(names)
        )
        with self.engine.connect() as connection:
            if self.engine.dialect.name == "postgresql":
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                rows = connection.execute(query).all()
                together = {(r.source, r.other): r.stories for r in connection.execute(pairs)}
        habits = {row.source: (row.stories, row.articles) for row in rows if row.source is not None}
        return habits, rows[0].until, together

    def save_source_habits(
        self,
        habits: Mapping[str, tuple[int, int]],
        until: datetime,
        was: datetime | None,
        *,
        pairs: Mapping[tuple[str, str], int],
    ) -> bool:
        """Write ``habits`` (the sources' tallies, up to ``until``) over those sources' kept
        ones, and ``pairs`` (the pairs of sources whose stories carried together changed
        since ``was``: ``SourceHabits.changed_pairs``; the rest stay as they are), if the
        kept habits are still those read at ``was`` (``source_habits``); False if another
        run saved first (its tally holds the same stories: adding this one's would count
        them twice). Only the changed pairs are written: with hundreds of sources the
        pairs are tens of thousands of rows, and SQLite's write lock is held while they go.

        The rows of sources not in ``habits`` (not configured now: ``source_habits`` read
        only the configured) keep their counts, as their pairs do: none of their stories
        was in this tally, so nothing of theirs changed. Their ``tallied_until`` moves on
        with the rest, so that every row says the same (what the check against ``was``
        leans on), and a source that comes back is tallied from there on."""
        rows = [
            {"source": name, "stories": stories, "articles": articles, "tallied_until": until}
            for name, (stories, articles) in habits.items()
        ]
        pair_rows = [
            {"pair_source": source, "pair_other": other, "stories": n}
            for (source, other), n in pairs.items()
        ]
        kept = SOURCE_HABITS.c.tallied_until
        try:
            with self.engine.connect() as connection, connection.begin() as transaction:
                # The write first: on SQLite the transaction holds the write lock before it
                # reads, so two runs saving at once wait for each other instead of failing.
                moved = connection.execute(
                    update(SOURCE_HABITS)
                    .where(kept.is_(None) if was is None else kept == was)
                    .values(tallied_until=until)
                )
                others = select(func.count()).select_from(SOURCE_HABITS)
                if was is not None:
                    others = others.where(kept != until)
                left = connection.execute(others).scalar()
                if left or (was is not None and not moved.rowcount):
                    transaction.rollback()
                    return False
                if rows:
                    if was is not None:
                        # A first save found the table empty and deletes nothing: one
                        # deleting here would remove, on PostgreSQL, the rows another first
                        # save committed since the count, and both would stand.
                        connection.execute(
                            delete(SOURCE_HABITS).where(SOURCE_HABITS.c.source.in_(list(habits)))
                        )
                    connection.execute(insert(SOURCE_HABITS), rows)
                if pair_rows:
                    connection.execute(
                        delete(SOURCE_PAIRS).where(
                            SOURCE_PAIRS.c.source == bindparam("pair_source"),
                            SOURCE_PAIRS.c.other == bindparam("pair_other"),
                        ),
                        pair_rows,
                    )
                    connection.execute(
                        insert(SOURCE_PAIRS).values(
                            source=bindparam("pair_source"),
                            other=bindparam("pair_other"),
                            stories=bindparam("stories"),
                        ),
                        pair_rows,
                    )
        except IntegrityError:
            # PostgreSQL: two first saves both found the table empty (nothing to lock);
            # the other's rows came first, and its tally holds the same stories.
            return False
        return True

    def forget_source_habits(self, configured: Iterable[str], before: datetime) -> int:
        """Delete the kept habits (the ``source_habits`` row, and every pair naming it) of
        each source not ``configured`` (enabled or not: a paused source keeps its tally)
        and not fetched since ``before``: a source removed long ago, or a renamed one's
        old name. One fetched since comes back with its tally. How many were forgotten.

        The other rows keep their ``tallied_until``, and the tally goes on from it. Were
        every row to go (no source configured now has one), the next save would be a first
        one, and count nothing twice: a source that carried a tallied story has a row."""
        names = set(configured)
        last = (
            select(SOURCE_HABITS.c.source, func.max(SOURCES.c.last_attempt_at))
            .select_from(SOURCE_HABITS.outerjoin(SOURCES, SOURCES.c.name == SOURCE_HABITS.c.source))
            .group_by(SOURCE_HABITS.c.source)
        )
        with self.engine.begin() as connection:
            gone = [
                name
                for name, fetched in connection.execute(last)
                if name not in names and (fetched is None or fetched < before)
            ]
            for chunk in in_chunks(gone):
                connection.execute(
                    delete(SOURCE_PAIRS).where(
                        or_(SOURCE_PAIRS.c.source.in_(chunk), SOURCE_PAIRS.c.other.in_(chunk))
                    )
                )
                connection.execute(delete(SOURCE_HABITS).where(SOURCE_HABITS.c.source.in_(chunk)))
        return len(gone)

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
        sending = exists().where(
            DELIVERIES.c.edition_id == EDITIONS.c.id,
            DELIVERIES.c.status.not_in(list(FINAL_DELIVERY_STATES)),
        )
        query = select(EDITIONS.c.digest_id, EDITIONS.c.slot, EDITIONS.c.created_at).where(sending)
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
        sending = exists().where(
            DELIVERIES.c.edition_id == EDITIONS.c.id,
            DELIVERIES.c.status.not_in(list(FINAL_DELIVERY_STATES)),
        )
        old = select(EDITIONS.c.id).where(
            EDITIONS.c.digest_id == digest_id, EDITIONS.c.slot < before, ~sending
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
