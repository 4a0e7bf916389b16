"""Habit queries: the sources' habits the ranking learns across runs (``rank.habits``).

Each source's tally of settled stories and each pair of sources' stories carried together,
read for the sources configured now, saved as stories settle, and forgotten for a source
long gone from the config. A mixin of ``Store``; all SQL stays in ``store/``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from digest.store.base import StoreBase
from digest.store.ingest import in_chunks
from digest.store.tables import SOURCE_HABITS, SOURCE_PAIRS, SOURCES


class HabitQueries(StoreBase):
    """The queries of the sources' kept habits (``Store`` inherits them)."""

    def source_habits(
        self, sources: Iterable[str]
    ) -> tuple[dict[str, tuple[int, int]], datetime | None, dict[tuple[str, str], int]]:
        """The named sources' kept habits: each one's (stories, articles) over the settled
        stories tallied so far, up to when stories are tallied (None: nothing yet), and
        each pair of them's stories carried together.

        Only the named sources (a ranking names those configured now): a source removed
        or renamed keeps its rows (away for a week, it comes back with its tally; until
        ``forget_source_habits``), but its pairs must not weigh in the others' breadth at
        once, and the pairs read grow with the square of the sources named, not of every
        source ever seen. ``until`` is
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
