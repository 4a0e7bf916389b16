"""The old home of the edition, outbox and job-run queries, kept for one release so that
``from digest.store.deliveries import OutboxState`` keeps working: the queries now live in
editions.py, outbox.py, requeue.py, jobs.py and rates.py. Import from those instead."""

from __future__ import annotations

from digest.store.outbox import OutboxState

__all__ = ["OutboxState"]
