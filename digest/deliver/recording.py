"""Recording a batch the transport sent, surely: a database that fails at that moment must
not turn into a second copy for everyone in the batch.

The server has taken the messages; only the record is missing. Left 'sending', the rows
would come back when their lease runs out and go out again. So at the first failure the
results go to the journal of unrecorded sends (``store.journal``: the next send on this
machine records them from it before it takes back any row), and the record is tried again
with a growing pause for ``delivery.record_retry_seconds`` (at most a third of the lease,
which the claim keeps renewing meanwhile). A try that goes through takes the entry out
again; if the database still fails the run stops with a StoreError saying what happened
and what to do. Kept first, the results survive a Ctrl-C or a kill during the retries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from digest.deliver.batches import Batch, Claim, Row, counted, stored_results
from digest.deliver.doubts import held_for_weighing
from digest.deliver.report import DeliveryReport
from digest.errors import DeliveryError, StoreError
from digest.records import SendResult
from digest.states import DeliveryStatus
from digest.store.engine import BUSY_TIMEOUT_SECONDS
from digest.store.journal import JournalEntry, SendJournal, shown_ids
from digest.store.trouble import database_words

log = logging.getLogger("digest.deliver")

FIRST_PAUSE = 0.5  # seconds before the second try; doubling, at most LONGEST_PAUSE
LONGEST_PAUSE = 10.0
LEASE_MARGIN = 2.0  # seconds a try must end before the lease does


@dataclass(frozen=True)
class Recorder:
    """How a run records its sent batches: where results are counted, when a deferred
    row is tried again, how long a failing record is retried, and the journal."""

    report: DeliveryReport
    retry_at: Callable[[Row], datetime] | None
    patience: float  # seconds
    journal: SendJournal | None

    async def sent(self, batch: Batch, results: list[SendResult]) -> set[int]:
        """A sent batch's results recorded surely (``record_batch``); the claim stops
        renewing however that ends; its progress goes once it is recorded (or stays, for the
        replay, when not). The delivery ids recorded."""
        try:
            done = await record_batch(
                batch.claim,
                results,
                batch.rows,
                self.report,
                self.retry_at,
                self.patience,
                self.journal,
            )
        except BaseException:
            batch.unrecorded()
            raise
        batch.recorded()
        return done

    async def stopped(self, batch: Batch, exc: DeliveryError) -> None:
        """The transport stopped mid-batch: what it did send recorded, the rest released
        for the next run, and the reason in the report."""
        done = await self.sent(batch, [r for r in exc.results if isinstance(r, SendResult)])
        batch.claim.release([i for i in batch.rows if i not in done])
        self.report.stopped = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
        # The report carries it to whoever prints the run (the CLI, the daemon's log line):
        # logged as an error here too, it was said twice.
        log.info("delivery stopped: %s", self.report.stopped)


async def record_batch(
    claim: Claim,
    results: list[SendResult],
    rows: Mapping[int, Row],
    report: DeliveryReport,
    retry_at: Callable[[Row], datetime] | None,
    patience: float,
    journal: SendJournal | None,
) -> set[int]:
    """``batches.record`` for a batch that went out, surely. When the database fails, the
    results go to ``journal`` at once (a Ctrl-C or a kill during the retries finds them
    there) and the record is retried for ``patience`` seconds: a try that goes through
    takes the entry out again; the last failure raises a StoreError. The delivery ids
    recorded."""
    taken_at = claim.store.clock.now()  # the server's answers are in: a sent row's sent_at
    started = time.monotonic()
    held = held_for_weighing(results, rows, report)  # the run's end weighs its bounces
    entry = _entry(claim, held, rows, retry_at, taken_at)
    stored, retries, bounced = list(entry.results), dict(entry.retry_at) or None, entry.bounced
    # A try may wait the busy timeout for a lock: when the lease could run out meanwhile
    # (another machine's sender takes the rows back then, not knowing this journal), the
    # entry is kept before the first try, not after it.
    early = not _time_for_a_try(claim, 0.0)
    problem = await asyncio.to_thread(_keep, entry, journal) if early else None
    try:
        await asyncio.to_thread(claim.finish, stored, retries, bounced, early and problem is None)
    except SQLAlchemyError as exc:
        entry = replace(entry, reason=database_words(exc))
        if not early:
            problem = await asyncio.to_thread(_keep, entry, journal)
        await _record_again(claim, entry, journal, patience, started, problem)
    except BaseException:  # a Ctrl-C or a cancel during the write: its fate is unknown here
        if not early:
            _keep_quietly(entry, journal)
        raise
    else:
        if early and problem is None:
            await _void(entry, journal)
    # Counted here, not in a second trip to a thread: the report reads no database. Its
    # bounces are counted as the server said; the run's end weighs them.
    return counted(results, rows, report)


def _entry(
    claim: Claim,
    results: list[SendResult],
    rows: Mapping[int, Row],
    retry_at: Callable[[Row], datetime] | None,
    taken_at: datetime,
) -> JournalEntry:
    """The journal's entry for a sent batch's results: what its record writes."""
    stored, retries, bounced = stored_results(results, rows, retry_at)
    return JournalEntry(
        taken_at, claim.edition_id, claim.token, stored, retries or {}, bounced=bounced
    )


def _time_for_a_try(claim: Claim, wait: float) -> bool:
    """Whether a try started after ``wait`` seconds ends, busy timeout included, before
    the lease does (reckoned from the last claim or renewal that went through)."""
    return time.monotonic() + wait + BUSY_TIMEOUT_SECONDS + LEASE_MARGIN <= claim.lease_ends


async def _void(entry: JournalEntry, journal: SendJournal | None) -> None:
    """The entry taken out of the journal: its batch is recorded."""
    if journal is None:
        return
    try:
        await asyncio.to_thread(journal.void, entry.token)
    except StoreError as err:  # harmless: a replay finds its rows recorded already
        log.warning("%s: could not take out a batch recorded since (%s)", journal.path, err)


async def _record_again(
    claim: Claim,
    entry: JournalEntry,
    journal: SendJournal | None,
    patience: float,
    started: float,
    problem: str | None,
) -> None:
    """The first record failed, its entry kept (``problem``: why it could not be): the
    record tried again with a growing pause while ``patience`` and the lease last; the
    entry taken out once it goes through."""
    log.warning(
        "edition %d: the database failed to record a batch the mail server took "
        "(%d messages: %s); %s, trying again for up to %.0f s",
        claim.edition_id,
        len(entry.results),
        entry.reason,
        f"kept in {journal.path} meanwhile" if problem is None and journal else problem,
        max(0.0, patience - (time.monotonic() - started)),
    )
    pause = FIRST_PAUSE
    tries = 1
    while True:
        left = patience - (time.monotonic() - started)
        wait = min(pause, left)
        if left <= 0 or not _time_for_a_try(claim, wait):
            raise _kept(entry, journal, tries, problem)
        await asyncio.sleep(wait)
        pause = min(2 * pause, LONGEST_PAUSE)
        try:
            await asyncio.to_thread(
                claim.finish,
                list(entry.results),
                dict(entry.retry_at) or None,
                entry.bounced,
                problem is None,
            )
        except SQLAlchemyError as exc:
            tries += 1
            entry = replace(entry, reason=database_words(exc))
            continue
        break
    log.warning("edition %d: the batch was recorded at try %d", claim.edition_id, tries + 1)
    if problem is None:
        await _void(entry, journal)


def _keep(entry: JournalEntry, journal: SendJournal | None) -> str | None:
    """``entry`` kept in ``journal``; None, or why it could not be."""
    if journal is None:
        return "no journal is configured"
    try:
        journal.keep(entry)
    except StoreError as err:
        return f"the journal could not be written either ({err.message}; {err.hint})"
    return None


def _keep_quietly(entry: JournalEntry, journal: SendJournal | None) -> None:
    """``entry`` kept on the way out of a cancel (the replay writes it only if the record
    did not); a failure is logged, not raised over the cancel."""
    problem = _keep(entry, journal)
    if problem is not None:
        log.error(
            "edition %d: stopped while recording a batch the mail server took; %s: "
            "deliveries %s go out again after their lease, unless the batch's progress "
            "file has them (the next send on this machine records those)",
            entry.edition_id,
            problem,
            _ids(entry),
        )


def _kept(
    entry: JournalEntry, journal: SendJournal | None, tries: int, problem: str | None
) -> StoreError:
    """The error that ends the run: the batch's results are in the journal (or, when the
    journal could not keep them, which deliveries are in flight)."""
    taken = sum(1 for _, status, _, _ in entry.results if status == DeliveryStatus.SENT)
    what = (
        f"edition {entry.edition_id}: the mail server took a batch ({taken} of "
        f"{len(entry.results)} messages accepted) but the database could not record it after "
        f"{tries} {'try' if tries == 1 else 'tries'} ({entry.reason})"
    )
    fix = "fix the database (a lock another program holds, a full disk, a server that is down)"
    if problem is None and journal is not None:
        return StoreError(
            f"{what}; its results are kept in {journal.path}",
            f"{fix}, then run `digest send` or let the daemon's retry job come: the next "
            "send on this machine records them from that file before it takes back any "
            "row. Workers on other machines cannot read it: they take the rows back when "
            "the lease runs out (delivery.lease_seconds) and mail them again, so fix the "
            "database before then or stop them. `digest status` lists them until then",
        )
    return StoreError(
        f"{what}, and {problem}: deliveries {_ids(entry)} are still marked in flight",
        f"{fix} before their lease runs out (delivery.lease_seconds after the send): "
        "after that the next send mails them again, but for those the batch's progress "
        "file beside delivery.unrecorded_file has (that send on this machine records them)",
    )


def _ids(entry: JournalEntry) -> str:
    return shown_ids([delivery_id for delivery_id, _, _, _ in entry.results])
