"""Outbox rows moved between states by a run and by `digest retry`: deferred rows due again,
rows of dead senders reclaimed, unsent rows paused, expired or suppressed.

A mixin of ``Store``; all SQL stays in ``store/``.
"""

from __future__ import annotations

from sqlalchemy import select as core_select
from sqlalchemy import update
from sqlalchemy.sql.elements import ColumnElement

from digest.states import DeliveryStatus, SubscriberStatus
from digest.store.delivery_rows import due, orphaned, unfinished
from digest.store.journal_replay import JournalQueries
from digest.store.pg import notify_outbox
from digest.store.tables import DELIVERIES, SUBSCRIBERS


class RequeueQueries(JournalQueries):
    """The outbox's state changes between sends (``Store`` inherits them). Rows of a dead
    sender are taken back only after the journal of unrecorded sends is recorded: a row the
    server took must not be sent again, nor failed as too late."""

    def requeue_deferred(self, edition_id: int, due_only: bool = True) -> int:
        """Deferred rows (a 4xx last time) whose retry time has come become pending again
        (every deferred row when not ``due_only``: `digest retry`)."""
        return self._update_deliveries(
            edition_id,
            [
                DELIVERIES.c.status == DeliveryStatus.DEFERRED,
                *([due(self.clock.now())] if due_only else []),
            ],
            status=DeliveryStatus.PENDING,
        )

    def expire_unfinished(self, edition_id: int, reason: str) -> int:
        """The edition's rows still waiting to go (pending, deferred, or claimed by a dead
        sender) become failed with ``reason``: too late to send. Count them."""
        self.replay_journal()
        return self._update_deliveries(
            edition_id,
            [unfinished(due_only=False, now=self.clock.now())],
            status=DeliveryStatus.FAILED,
            error=reason,
            lease_until=None,
            claim_token=None,
            retry_at=None,
        )

    def pause_unsent(self, edition_id: int, reason: str) -> int:
        """The edition's unsent rows (pending, and deferred: the refusals that spent the
        budget) wait for the admin: no run or retry sends them until `digest retry`
        (``resume_paused``). Count them."""
        return self._update_deliveries(
            edition_id,
            [DELIVERIES.c.status.in_((DeliveryStatus.PENDING, DeliveryStatus.DEFERRED))],
            status=DeliveryStatus.PAUSED,
            error=reason,
            retry_at=None,
        )

    def resume_paused(self, edition_id: int) -> int:
        """`digest retry`: the edition's paused rows are pending again. Count them."""
        return self._update_deliveries(
            edition_id,
            [DELIVERIES.c.status == DeliveryStatus.PAUSED],
            status=DeliveryStatus.PENDING,
            error=None,
        )

    def reclaim_expired(self, edition_id: int) -> int:
        """Claimed rows whose lease ran out (their sender died) become pending again."""
        self.replay_journal()
        return self._update_deliveries(
            edition_id,
            [orphaned(self.clock.now())],
            status=DeliveryStatus.PENDING,
            lease_until=None,
            claim_token=None,
        )

    def retry_failed(self, edition_id: int) -> int:
        """`digest retry`: failed rows of still-active subscribers go back to pending."""
        active = core_select(SUBSCRIBERS.c.id).where(
            SUBSCRIBERS.c.status == SubscriberStatus.ACTIVE
        )
        return self._update_deliveries(
            edition_id,
            [DELIVERIES.c.status == DeliveryStatus.FAILED, DELIVERIES.c.subscriber_id.in_(active)],
            status=DeliveryStatus.PENDING,
            error=None,
        )

    def suppress_inactive(self, edition_id: int) -> int:
        """Pending (or paused) rows of people who left (or bounced) since they were queued:
        'suppressed'."""
        inactive = core_select(SUBSCRIBERS.c.id).where(
            SUBSCRIBERS.c.status != SubscriberStatus.ACTIVE
        )
        return self._update_deliveries(
            edition_id,
            [
                DELIVERIES.c.status.in_((DeliveryStatus.PENDING, DeliveryStatus.PAUSED)),
                DELIVERIES.c.subscriber_id.in_(inactive),
            ],
            status=DeliveryStatus.SUPPRESSED,
        )

    def _update_deliveries(
        self, edition_id: int, conditions: list[ColumnElement[bool]], **values: object
    ) -> int:
        """Set ``values`` on the edition's rows matching ``conditions``; count them."""
        with self.engine.begin() as connection:
            result = connection.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.edition_id == edition_id, *conditions)
                .values(**values, updated_at=self.clock.now())
            )
            if result.rowcount and values.get("status") == DeliveryStatus.PENDING:
                notify_outbox(connection)  # rows to send: wake the workers
            return int(result.rowcount or 0)
