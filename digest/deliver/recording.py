"""Recording a batch the transport sent, surely: a database that fails at that moment must
not turn into a second copy for everyone in the batch.

The server has taken the messages; only the record is missing. Left 'sending', the rows
would come back when their lease runs out and go out again. So the record is tried again
with a growing pause for ``delivery.record_retry_seconds`` (at most a third of the lease,
which the claim keeps renewing meanwhile), and if the database still fails the results go
to the journal of unrecorded sends (``store.journal``), from which the next send on this
machine records them before it takes back any row. The run then stops with a StoreError
saying what happened and what to do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from digest.deliver.batches import Claim, Row, counted, stored_results
from digest.deliver.report import DeliveryReport
from digest.errors import StoreError
from digest.records import SendResult
from digest.states import DeliveryStatus
from digest.store.journal import JournalEntry, SendJournal, database_words

log = logging.getLogger("digest.deliver")

FIRST_PAUSE = 0.5  # seconds before the second try; doubling, at most LONGEST_PAUSE
LONGEST_PAUSE = 10.0
_IDS_SHOWN = 50  # delivery ids an error names when no journal could keep them


async def record_batch(
    claim: Claim,
    results: list[SendResult],
    rows: Mapping[int, Row],
    report: DeliveryReport,
    retry_at: Callable[[Row], datetime] | None,
    patience: float,
    journal: SendJournal | None,
) -> set[int]:
    """``batches.record`` for a batch that went out: the record retried for ``patience``
    seconds while the database fails, then kept in ``journal`` and a StoreError raised.
    The delivery ids recorded."""
    stored, retries = stored_results(results, rows, retry_at)
    taken_at = claim.store.clock.now()  # the server's answers are in: a sent row's sent_at
    started = time.monotonic()
    pause = FIRST_PAUSE
    tries = 0
    while True:
        try:
            claim.finish(stored, retries)
            break
        except SQLAlchemyError as exc:
            tries += 1
            left = patience - (time.monotonic() - started)
            if left <= 0:
                reason = database_words(exc)
                entry = JournalEntry(
                    taken_at, claim.edition_id, claim.token, stored, retries or {}, reason
                )
                raise _kept(entry, journal, tries) from exc
            if tries == 1:
                log.warning(
                    "edition %d: the database failed to record a batch the mail server took "
                    "(%d messages: %s); trying again for up to %.0f s",
                    claim.edition_id,
                    len(stored),
                    database_words(exc),
                    left,
                )
            await asyncio.sleep(min(pause, left))
            pause = min(2 * pause, LONGEST_PAUSE)
    if tries:
        log.warning("edition %d: the batch was recorded at try %d", claim.edition_id, tries + 1)
    return counted(claim, results, rows, report)


def _kept(entry: JournalEntry, journal: SendJournal | None, tries: int) -> StoreError:
    """The batch's results kept in the journal; the error that ends the run, saying so
    (or, when the journal could not keep them either, naming the deliveries)."""
    taken = sum(1 for _, status, _, _ in entry.results if status == DeliveryStatus.SENT)
    what = (
        f"edition {entry.edition_id}: the mail server took a batch ({taken} of "
        f"{len(entry.results)} messages accepted) but the database could not record it after "
        f"{tries} {'try' if tries == 1 else 'tries'} ({entry.reason})"
    )
    fix = "fix the database (a lock another program holds, a full disk, a server that is down)"
    problem = "no journal is configured"
    if journal is not None:
        try:
            journal.keep(entry)
        except OSError as err:
            problem = f"the journal {journal.path} could not be written either ({err})"
        else:
            return StoreError(
                f"{what}; its results are kept in {journal.path}",
                f"{fix}, then run `digest send` or let the daemon's retry job come: the next "
                "send records them from that file before it takes back any row, so nobody "
                "gets them twice. `digest status` lists them until then",
            )
    ids = [str(delivery_id) for delivery_id, _, _, _ in entry.results]
    shown = ", ".join(ids[:_IDS_SHOWN]) + (" ..." if len(ids) > _IDS_SHOWN else "")
    return StoreError(
        f"{what}, and {problem}: deliveries {shown} are still marked in flight",
        f"{fix} before their lease runs out (delivery.lease_seconds after the send): "
        "after that the next send mails them again",
    )
