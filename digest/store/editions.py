"""Stored editions: built once per digest and slot, rebuilt while they went to nobody.

A mixin of ``Store``; all SQL stays in ``store/``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime

from sqlalchemy import delete, exists, insert, or_, update
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from digest.store.base import StoreBase
from digest.store.delivery_rows import unfinished, went_out
from digest.store.tables import DELIVERIES, EDITION_VIEWS, EDITIONS, Edition, EditionView


class EditionQueries(StoreBase):
    """The edition queries (``Store`` inherits them)."""

    def edition_by_id(self, edition_id: int) -> Edition | None:
        """One stored edition by its id."""
        with self.session() as s:
            return s.get(Edition, edition_id)

    def edition(self, digest_id: str, slot: datetime) -> Edition | None:
        """The stored edition of this digest for this slot, if built already."""
        with self.session() as s:
            return s.exec(
                select(Edition).where(Edition.digest_id == digest_id, Edition.slot == slot)
            ).first()

    def newest_edition(self, digest_id: str) -> Edition | None:
        """The digest's edition of the latest slot, if any."""
        with self.session() as s:
            query = select(Edition).where(Edition.digest_id == digest_id)
            return s.exec(query.order_by(col(Edition.slot).desc())).first()

    def save_edition(self, edition: Edition, views: Mapping[str, str] | None = None) -> Edition:
        """Store a newly built edition, with each choice of topics' own edition (``views``:
        topic key -> ``editions.stored.view_to_json``) in the same transaction: a send
        never finds the edition without them. If another process stored this slot first,
        return theirs (with its views: these are not written)."""
        with self.session() as s:
            s.add(edition)
            try:
                s.flush()
                assert edition.id is not None
                for key, view in (views or {}).items():
                    s.add(EditionView(edition_id=edition.id, topic_key=key, view=view))
                s.commit()
            except IntegrityError:
                s.rollback()
                saved = self.edition(edition.digest_id, edition.slot)
                assert saved is not None
                return saved
            s.refresh(edition)
            return edition

    def edition_views(self, edition_id: int, keys: Collection[str] | None = None) -> dict[str, str]:
        """Each choice of topics' own edition as stored with the edition (topic key ->
        its JSON): what the send gives that choice's readers. ``keys``: only those (the
        web view asks for one; an edition may hold hundreds, a few kB each)."""
        query = core_select(EDITION_VIEWS.c.topic_key, EDITION_VIEWS.c.view).where(
            EDITION_VIEWS.c.edition_id == edition_id
        )
        if keys is not None:
            query = query.where(EDITION_VIEWS.c.topic_key.in_(list(keys)))
        with self.engine.connect() as connection:
            return {key: view for key, view in connection.execute(query)}

    def edition_went_out(self, edition_id: int) -> bool:
        """A message of the edition went out, or may have: a row sent, or one in flight."""
        return edition_id in self.editions_went_out([edition_id])

    def editions_went_out(self, edition_ids: Iterable[int]) -> set[int]:
        """Which of these editions a message of went out, or may have (a row sent, or one
        in flight): one query for a page of editions, each answered by its first such row."""
        ids = set(edition_ids)
        if not ids:
            return set()
        sent = exists().where(DELIVERIES.c.edition_id == EDITIONS.c.id, went_out())
        query = core_select(EDITIONS.c.id).where(EDITIONS.c.id.in_(ids), sent)
        with self.engine.connect() as connection:
            return set(connection.execute(query).scalars())

    def rebuild_edition(
        self, edition_id: int, edition: Edition, views: Mapping[str, str] | None = None
    ) -> tuple[Edition, bool]:
        """Put ``edition``'s render and stories in place of the stored edition ``edition_id``
        (which keeps its id and slot), if that one still has no story and went to nobody,
        and its ``views`` (``save_edition``) in place of its own, in one transaction;
        return the stored edition and whether it was rebuilt.

        One conditional UPDATE: when another run rebuilt or sent it meanwhile, theirs stands.
        """
        sent = exists().where(DELIVERIES.c.edition_id == EDITIONS.c.id, went_out())
        with self.engine.begin() as connection:
            result = connection.execute(
                update(EDITIONS)
                .where(EDITIONS.c.id == edition_id, EDITIONS.c.story_count == 0, ~sent)
                .values(
                    created_at=edition.created_at,
                    subject=edition.subject,
                    html=edition.html,
                    text=edition.text,
                    story_count=edition.story_count,
                    stories=edition.stories,
                )
            )
            rebuilt = bool(result.rowcount)
            if rebuilt:
                connection.execute(
                    delete(EDITION_VIEWS).where(EDITION_VIEWS.c.edition_id == edition_id)
                )
                if views:
                    connection.execute(
                        insert(EDITION_VIEWS),
                        [
                            {"edition_id": edition_id, "topic_key": key, "view": view}
                            for key, view in views.items()
                        ],
                    )
        stored = self.edition_by_id(edition_id)
        assert stored is not None
        return stored, rebuilt

    def editions(self, limit: int = 20, published: bool = False) -> list[Edition]:
        """The newest editions first; ``published``: only those with stories or a message
        that went out (the public archive: not a slot with nothing new, mailed to nobody)."""
        query = select(Edition)
        if published:
            sent = exists().where(DELIVERIES.c.edition_id == EDITIONS.c.id, went_out())
            query = query.where(or_(col(Edition.story_count) > 0, sent))
        with self.session() as s:
            return list(s.exec(query.order_by(col(Edition.slot).desc()).limit(limit)))

    def unfinished_editions(
        self,
        digest_id: str,
        since: datetime | None = None,
        before: datetime | None = None,
        due_only: bool = True,
    ) -> list[Edition]:
        """The digest's editions (slot in [since, before)) with rows a run should still send,
        oldest first: pending, deferred (whose retry time has come, if ``due_only``), or
        claimed by a sender whose lease ran out."""
        query = select(Edition).where(
            Edition.digest_id == digest_id,
            exists().where(
                DELIVERIES.c.edition_id == EDITIONS.c.id, unfinished(due_only, self.clock.now())
            ),
        )
        if since is not None:
            query = query.where(col(Edition.slot) >= since)
        if before is not None:
            query = query.where(col(Edition.slot) < before)
        with self.session() as s:
            return list(s.exec(query.order_by(col(Edition.slot))))
