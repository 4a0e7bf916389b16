"""Retention of what was sent: old editions and their delivery rows, deleted in batches.

A mixin of ``Store`` (kept apart so store.py stays readable); all SQL stays in ``store/``.
Each batch is its own short transaction, so pruning a year of editions never holds
SQLite's one writer lock for long: a send or a gather running beside it waits a batch,
not the whole prune.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, exists, func, select

from digest.store.base import StoreBase
from digest.store.delivery_rows import BEING_SENT
from digest.store.tables import DELIVERIES, EDITION_VIEWS, EDITIONS

DELIVERY_BATCH = 5000  # delivery rows deleted per transaction
EDITION_BATCH = 20  # editions (each up to a few hundred kB) deleted per transaction


@dataclass(frozen=True)
class HistoryPruned:
    """What one prune of the sent history deleted."""

    editions: int = 0
    deliveries: int = 0


class HistoryQueries(StoreBase):
    """The retention queries of editions and deliveries (``Store`` inherits them)."""

    def prune_history(
        self, editions_before: datetime, deliveries_before: datetime
    ) -> HistoryPruned:
        """Delete the delivery rows of editions whose slot is before ``deliveries_before``,
        and the editions (with their rows) whose slot is before ``editions_before``.

        Kept whatever their age: each digest's newest edition (a run of its slot must find
        who has had it, or it would be sent to everyone again: a yearly digest's slot is
        months old) and an edition with a row still to send (pending, deferred, paused).
        """
        rows = 0
        for edition_ids in self._prunable(deliveries_before, with_rows=True):
            rows += self._delete_deliveries(edition_ids)
        editions = 0
        for edition_ids in self._prunable(editions_before, with_rows=False):
            rows += self._delete_deliveries(edition_ids)
            with self.engine.begin() as connection:
                # each choice of topics' own edition goes with it (most went sooner:
                # ``prune_edition_views``)
                connection.execute(
                    delete(EDITION_VIEWS).where(EDITION_VIEWS.c.edition_id.in_(edition_ids))
                )
                result = connection.execute(delete(EDITIONS).where(EDITIONS.c.id.in_(edition_ids)))
                editions += int(result.rowcount or 0)
        return HistoryPruned(editions, rows)

    def _prunable(self, before: datetime, *, with_rows: bool) -> list[list[int]]:
        """The ids of the editions the rules let go, in batches of EDITION_BATCH.

        ``with_rows``: only editions that still have delivery rows (the rows' prune finds
        nothing to do in the editions it emptied before).
        """
        latest = EDITIONS.alias("latest")
        newest = (
            select(func.max(latest.c.slot))
            .where(latest.c.digest_id == EDITIONS.c.digest_id)
            .scalar_subquery()
        )
        conditions = [EDITIONS.c.slot < before, EDITIONS.c.slot < newest, ~BEING_SENT]
        if with_rows:
            conditions.append(exists().where(DELIVERIES.c.edition_id == EDITIONS.c.id))
        with self.engine.connect() as connection:
            ids = list(
                connection.execute(
                    select(EDITIONS.c.id).where(and_(*conditions)).order_by(EDITIONS.c.id)
                ).scalars()
            )
        return [ids[i : i + EDITION_BATCH] for i in range(0, len(ids), EDITION_BATCH)]

    def _delete_deliveries(self, edition_ids: list[int]) -> int:
        """Delete the editions' delivery rows, DELIVERY_BATCH a transaction; count them."""
        deleted = 0
        while True:
            batch = (
                select(DELIVERIES.c.id)
                .where(DELIVERIES.c.edition_id.in_(edition_ids))
                .limit(DELIVERY_BATCH)
                .scalar_subquery()
            )
            with self.engine.begin() as connection:
                count = int(
                    connection.execute(
                        delete(DELIVERIES).where(DELIVERIES.c.id.in_(batch))
                    ).rowcount
                    or 0
                )
            deleted += count
            if count < DELIVERY_BATCH:
                return deleted
