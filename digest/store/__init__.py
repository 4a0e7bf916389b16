"""The store: tables, migrations, and every query, beside the pipeline."""

from digest.store.base import saved_id
from digest.store.columns import utcnow
from digest.store.engine import (
    current_revision,
    existing_engine,
    open_engine,
    resolve_url,
    upgrade,
)
from digest.store.journal import JournalEntry, SendJournal
from digest.store.store import Store
from digest.store.tables import Article, Delivery, Edition, Source, Subscriber

__all__ = [
    "Article",
    "Delivery",
    "Edition",
    "JournalEntry",
    "SendJournal",
    "Source",
    "Store",
    "Subscriber",
    "current_revision",
    "existing_engine",
    "open_engine",
    "resolve_url",
    "saved_id",
    "upgrade",
    "utcnow",
]
