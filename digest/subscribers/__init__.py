"""Subscriber input, checked before it reaches the store: addresses and names (checks.py),
CSV files (csvfile.py), and the import that writes checked rows in chunks.

Bad rows are reported with their line number; good rows are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from digest.store.subscribers import ImportCounts
from digest.subscribers.checks import (
    NAME_LIMIT,
    STATUSES,
    NewSubscriber,
    check_name,
    check_subscriber_locale,
    check_subscriber_timezone,
    check_topics,
    normalise_email,
    sendable_name,
    stored_form,
    withdrawn_topics,
)
from digest.subscribers.csvfile import (
    CSV_COLUMNS,
    CsvHeaderError,
    accepted_columns,
    csv_columns,
    parse_csv,
    read_csv,
    to_csv,
    twice,
)

__all__ = [
    "CSV_COLUMNS",
    "NAME_LIMIT",
    "STATUSES",
    "CsvHeaderError",
    "NewSubscriber",
    "accepted_columns",
    "check_name",
    "check_subscriber_locale",
    "check_subscriber_timezone",
    "check_topics",
    "csv_columns",
    "import_subscribers",
    "normalise_email",
    "parse_csv",
    "read_csv",
    "sendable_name",
    "stored_form",
    "to_csv",
    "twice",
    "withdrawn_topics",
]


def import_subscribers(
    store: _ImportStore,
    rows: Sequence[NewSubscriber],
    chunk: int = 1000,
    by: str = "an import",
) -> tuple[int, int, list[str]]:
    """Add the rows nobody has yet, ``chunk`` rows a lookup and an insert: (added, already
    active, addresses that left earlier, the first thousand of them).

    Someone who unsubscribed, bounced or complained is not re-added: an import is not their
    consent. A row with another status than active keeps it (an export read back). ``rows``
    hold each address once (``parse_csv``'s). ``by``: who imported, for each new row's
    history.
    """
    counts = ImportCounts()
    added_after = store.last_subscriber_id()
    for start in range(0, len(rows), chunk):
        store.import_subscribers(rows[start : start + chunk], added_after, counts, by)
    return counts.added, counts.already, counts.left


class _ImportStore(Protocol):
    def last_subscriber_id(self) -> int: ...
    def import_subscribers(
        self,
        people: Sequence[NewSubscriber],
        added_after: int,
        counts: ImportCounts,
        by: str = ...,
    ) -> None: ...
