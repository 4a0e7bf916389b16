"""The old home of the edition, outbox and job-run queries, kept for one release so imports
of it keep working: they now live in editions.py, outbox.py, requeue.py, jobs.py, rates.py."""

from __future__ import annotations

from digest.store.outbox import OutboxQueries, OutboxState, QueueSummary

DeliveryQueries = OutboxQueries  # the mixin that held claim_deliveries

__all__ = ["DeliveryQueries", "OutboxState", "QueueSummary"]
