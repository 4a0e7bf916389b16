"""A claimed batch of delivery rows: the claim and its lease, one record per row, each row's
message, and the recording of what the transport said about each.

A claim holds its rows with a lease, renewed every third of it while the batch is out, so a
second sender (cron's `digest send` while the daemon runs) never takes a slow batch as if
its sender had died. Results are recorded only on rows the claim still holds (its token).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from digest.clock import Clock
from digest.deliver.base import Sender
from digest.deliver.report import DeliveryReport, refusal_reason
from digest.records import OutgoingMessage, Reader, Recipient, SendResult
from digest.render import MessageTemplate
from digest.states import DeliveryStatus, SendStatus
from digest.store.claims import ClaimedRow
from digest.store.journal import SendJournal
from digest.store.journal_progress import ProgressFile
from digest.store.outbox import OutboxState
from digest.store.refusals import Attempt, EditionAnswers

log = logging.getLogger("digest.deliver")


class RefusalStore(Protocol):
    """The store's read of the readers' earlier answers, its write of the verdict, and
    its clock: what ``doubts`` weighs a run's 'user unknown' refusals with."""

    clock: Clock

    def earlier_attempts(
        self, subscriber_ids: Collection[int], edition_id: int, per_reader: int = 50
    ) -> dict[int, list[Attempt]]: ...
    def edition_answers(self, edition_id: int, phrase: str) -> EditionAnswers: ...
    def settle_refusals(
        self, reasons: Mapping[int, tuple[str, str]], bounced: Sequence[int]
    ) -> int: ...


class DeliveryStore(RefusalStore, Protocol):
    """The store methods the dispatcher needs, and its clock (retry times are on it)."""

    journal: SendJournal | None  # where a sent batch's record is kept while it fails

    def queue_deliveries(self, edition_id: int) -> int: ...
    def requeue_deferred(self, edition_id: int) -> int: ...
    def reclaim_expired(self, edition_id: int) -> int: ...
    def suppress_inactive(self, edition_id: int) -> int: ...
    def claim_deliveries(
        self, edition_id: int, limit: int, lease_seconds: float = 300.0
    ) -> Sequence[tuple[ClaimedRow, Reader]]: ...
    def start_attempt(self, claim_token: str) -> set[int]: ...
    def renew_lease(self, claim_token: str, lease_seconds: float) -> int: ...
    def finish_deliveries(
        self,
        results: list[tuple[int, str, str, str | None]],
        claim_token: str,
        retry_at: dict[int, datetime] | None = None,
        bounced: Sequence[int] = (),
    ) -> int: ...
    def recorded_under(self, claim_token: str, delivery_ids: Sequence[int]) -> int: ...
    def release_deliveries(self, delivery_ids: list[int], claim_token: str) -> None: ...
    def pause_unsent(self, edition_id: int, reason: str) -> int: ...
    def has_pending(self, edition_id: int) -> bool: ...
    def outbox_state(self, edition_id: int) -> OutboxState: ...
    def failed_before(self, subscriber_id: int, edition_id: int, reason: str) -> int | None: ...


@dataclass
class Row:
    """One claimed delivery row: what recording its result needs."""

    delivery_id: int
    subscriber_id: int | None
    email: str
    attempts: int  # tries so far, this one included: a deferred row's next wait grows
    message_id: str = ""  # set when its message is built ("" for a row settled before)

    @classmethod
    def claimed(cls, delivery: ClaimedRow, subscriber: Reader) -> Row:
        """The record of one row as the claim returned it (the claim does not count the
        attempt: ``Claim.start`` does, when the batch goes out)."""
        return cls(delivery.id, subscriber.id, subscriber.email, delivery.attempts + 1)


@dataclass
class Claim:
    """One claimed batch: its token, and the lease kept alive while the batch is out.

    ``held`` counts the rows still in flight under the claim: rows it recorded (a skipped
    subscriber, a refused message, before the batch goes out) are no longer held, so
    fewer rows renewed than that means another sender took some.
    """

    store: DeliveryStore
    token: str
    held: int
    edition_id: int
    lease_seconds: float
    warned: bool = False

    renewing: asyncio.Task[None] | None = None
    # When the lease last set went from (time.monotonic, taken before the claim or renewal
    # that set it): the record of a sent batch must be kept before it runs out.
    leased_at: float = field(default_factory=time.monotonic)

    @property
    def lease_ends(self) -> float:
        """When the lease runs out unless renewed again (time.monotonic)."""
        return self.leased_at + self.lease_seconds

    def start(self, rows: Collection[int]) -> set[int]:
        """The batch goes out now: one attempt counted on each row the claim still holds
        (a batch claimed ahead and never sent counts none); those rows' ids. Rows of
        ``rows`` not among them were taken by another sender (this one stalled past the
        lease): said once, and they must not go out from here."""
        held = self.store.start_attempt(self.token)
        if len(held) < len(rows):
            self._taken(len(set(rows) - held))
        return held

    def start_renewing(self) -> None:
        """Renew the lease every third of it until ``stop_renewing`` (the first renewal
        comes after a third: the claim has just set it)."""
        self.renewing = asyncio.create_task(self._renew(first_wait=True))

    def stop_renewing(self) -> None:
        """Stop renewing (the batch is recorded, released, or the run ends)."""
        if self.renewing is not None:
            self.renewing.cancel()
            self.renewing = None

    def release(self, delivery_ids: Collection[int]) -> None:
        """Nothing more of the claim goes out: renewing stops and ``delivery_ids`` (those
        still held) go back to pending now, not when the lease runs out."""
        self.stop_renewing()
        self.store.release_deliveries(list(delivery_ids), self.token)

    async def _renew(self, first_wait: bool = False) -> None:
        if first_wait:
            await asyncio.sleep(self.lease_seconds / 3)
        while True:
            started = time.monotonic()
            try:
                held = self.store.renew_lease(self.token, self.lease_seconds)
            except Exception as exc:  # a heartbeat must not break the send in flight
                log.error(
                    "edition %d: could not renew the lease of a batch in flight (%s); if the "
                    "batch outlives delivery.lease_seconds another sender may send it again. "
                    "Check the database",
                    self.edition_id,
                    exc,
                )
            else:
                self.leased_at = started
                if held < self.held:
                    self._taken(self.held - held)
            await asyncio.sleep(self.lease_seconds / 3)

    def finish(
        self,
        results: list[tuple[int, str, str, str | None]],
        retry_at: dict[int, datetime] | None,
        bounced: Sequence[int] = (),
        journaled: bool = False,
    ) -> None:
        """Record the results on the rows the claim still holds and suppress the reader of
        every ``bounced`` row with them, a row whose lease was lost to another sender too: a
        hard bounce is the server's word that the address is dead, whoever records the row;
        say so if some rows were lost. ``journaled``: the results are in the journal, where
        another process of this machine may have recorded them meanwhile (those rows were
        not lost)."""
        recorded = self.store.finish_deliveries(results, self.token, retry_at, bounced)
        if recorded < len(results):
            taken = len(results) - recorded
            if journaled:
                taken -= self.store.recorded_under(self.token, [r[0] for r in results])
            if taken > 0:
                self._taken(taken)
        self.held -= len(results)  # recorded, or another sender's now: not this claim's

    def _taken(self, count: int) -> None:
        """Say once per claim that rows of it were taken (renewal may find them first)."""
        if self.warned:
            return
        self.warned = True
        log.warning(
            "edition %d: %d deliveries of a batch in flight were taken by another sender after "
            "their lease ran out (this process stalled); they may go out twice and the other "
            "sender records them. Raise delivery.lease_seconds above the longest batch time",
            self.edition_id,
            count,
        )


@dataclass
class Batch:
    """One claimed batch, built: its messages, and the rows they go out for."""

    claim: Claim
    allowed: int  # tokens the limiter granted for it
    messages: list[OutgoingMessage] = field(default_factory=list)
    rows: dict[int, Row] = field(default_factory=dict)  # delivery id -> row, going out
    progress: ProgressFile | None = None  # what the server answered, until the record

    async def go_out(self, sender: Sender) -> list[SendResult]:
        """The batch sent, each answer kept in its progress file as it comes (with a
        journal: ``store.journal_progress``), so a kill mid-batch sends only the rest again."""
        store, claim = self.claim.store, self.claim
        if store.journal is not None and self.messages:
            folder = store.journal.progress
            self.progress = ProgressFile.open(folder, claim.token, claim.edition_id, store.clock)
        answered = self.progress.answered if self.progress else None
        return await sender.send_batch(self.messages, answered)

    def recorded(self) -> None:
        """The batch is recorded: its progress goes, and the lease is not renewed."""
        self.claim.stop_renewing()
        if self.progress is not None:
            self.progress.recorded()

    def unrecorded(self) -> None:
        """The batch leaves without its record (an error, a cancel): the lease is not
        renewed and its progress stays, for the replay before its rows are taken back."""
        self.claim.stop_renewing()
        if self.progress is not None:
            self.progress.close()

    def add(self, row: Row, message: OutgoingMessage) -> None:
        """A row's message goes out with this batch."""
        row.message_id = message.message_id
        self.rows[row.delivery_id] = row
        self.messages.append(message)

    def keep(self, held: Collection[int]) -> int:
        """Only the rows the claim still holds go out; the count of the others, dropped."""
        dropped = len(self.messages)
        self.messages = [m for m in self.messages if m.delivery_id in held]
        self.rows = {i: row for i, row in self.rows.items() if i in held}
        return dropped - len(self.messages)


def record(
    claim: Claim,
    results: list[SendResult],
    rows: Mapping[int, Row],
    report: DeliveryReport,
    retry_at: Callable[[Row], datetime] | None = None,
) -> set[int]:
    """Record each result on its row (and in the report); the delivery ids recorded.

    A hard bounce (5.1.x: no such user, no such domain) fails the row and suppresses the
    subscriber, so no later edition is sent to a dead address.
    """
    claim.finish(*stored_results(results, rows, retry_at))
    return counted(results, rows, report)


def stored_results(
    results: list[SendResult],
    rows: Mapping[int, Row],
    retry_at: Callable[[Row], datetime] | None = None,
) -> tuple[list[tuple[int, str, str, str | None]], dict[int, datetime] | None, tuple[int, ...]]:
    """What ``Claim.finish`` writes for ``results``: each row's state, detail and
    Message-ID, when each deferred row may be tried again, and the hard bounces (whose
    readers it suppresses)."""
    stored: list[tuple[int, str, str, str | None]] = [
        (r.delivery_id, _stored(r.status), r.detail, rows[r.delivery_id].message_id)
        for r in results
    ]
    bounced = tuple(r.delivery_id for r in results if r.status == SendStatus.BOUNCED)
    if retry_at is None:
        return stored, None, bounced
    return (
        stored,
        {
            r.delivery_id: retry_at(rows[r.delivery_id])
            for r in results
            if r.status == SendStatus.DEFERRED
        },
        bounced,
    )


def counted(results: list[SendResult], rows: Mapping[int, Row], report: DeliveryReport) -> set[int]:
    """After the record (which suppressed the hard bounces' readers): each result in the
    report; the delivery ids."""
    for result in results:
        _count(result, rows[result.delivery_id], report)
    return {r.delivery_id for r in results}


def _stored(status: str) -> str:
    """The row's state for a transport's status: a bounce is a failure, as stored."""
    return DeliveryStatus.FAILED if status == SendStatus.BOUNCED else status


def _count(result: SendResult, row: Row, report: DeliveryReport) -> None:
    """One result in the report, and logged (once: the CLI prints totals per reason)."""
    report.counts[_stored(result.status)] += 1
    report.bounced += result.status == SendStatus.BOUNCED
    if result.status == SendStatus.SKIPPED:
        report.skipped[result.detail] += 1
        log.info("delivery to %s skipped: %s", row.email, result.detail)
    elif result.status != SendStatus.SENT:
        line = f"{row.email}: {result.status}: {result.detail}"
        report.problems.append(line)
        report.refusals[f"{result.status}: {refusal_reason(result.detail)}"] += 1
        log.warning("delivery to %s", line)


def refused(store: DeliveryStore, row: Row, edition_id: int, reason: str) -> SendResult:
    """A row whose message cannot be built from the reader's own data (an address with no
    ASCII form, say): failed with the reason the first time, so the run reports it, and
    skipped on every later edition until the data is fixed, so it is not reported daily."""
    failed = f"{reason} (later editions skip this reader until it is fixed)"
    first = store.failed_before(row.subscriber_id or 0, edition_id, failed)
    if first is None:
        return SendResult(row.delivery_id, SendStatus.FAILED, failed)
    return SendResult(
        row.delivery_id,
        SendStatus.SKIPPED,
        f"{reason} (reported when edition {first} failed on it; skipped until it is fixed)",
    )


def message(
    template: MessageTemplate,
    recipient: Recipient,
    row: Row,
    wants_fields: bool,
    signer: Callable[[bytes], bytes] | None,
) -> OutgoingMessage:
    """One row's message: fields for an HTTP API, or MIME bytes (DKIM-signed if configured)."""
    if wants_fields:  # an HTTP API builds its own MIME from fields
        return OutgoingMessage(
            row.delivery_id,
            template.sender,
            row.email,
            template.message_id(recipient, row.delivery_id),
            b"",
            template.fields(recipient),
        )
    message_id, data = template.personalise(recipient, row.delivery_id)
    if signer is not None:
        data = signer(data)
    sender = recipient.bounce_address or template.sender  # VERP: bounces name the subscriber
    # personalise's bytes are CRLF throughout, and no line starts with a dot when the
    # template's own bytes have none (its values are quoted-printable, its headers folded
    # with a space); a signer's header is not vouched for here.
    plain = signer is None
    return OutgoingMessage(
        row.delivery_id,
        sender,
        row.email,
        message_id,
        data,
        crlf=plain,
        dot_safe=plain and template.dot_safe,
    )


async def more_to_claim(store: DeliveryStore, edition_id: int, report: DeliveryReport) -> bool:
    """After an empty claim: whether to claim again. Empty means "nothing claimable now":
    pending rows another sender's claim has locked this instant come free in a moment
    (try again), rows of a sender that died since the run began come back (take them);
    rows in flight under a live lease are named in the report, and the run ends."""
    for _ in range(50):  # a claim's lock lasts milliseconds; 50 x 0.1 s is more than enough
        if store.reclaim_expired(edition_id):
            log.warning("edition %d: rows of a sender that stopped came back; sending", edition_id)
            return True
        state = store.outbox_state(edition_id)
        if state.pending:
            await asyncio.sleep(0.1)
            continue
        report.in_flight, report.back_at = state.in_flight, state.last_back
        if state.in_flight:
            log.warning("edition %d: %s", edition_id, report.in_flight_note())
        return False
    log.warning(
        "edition %d: pending rows stayed locked by another transaction for 5 s; the next "
        "send (or a worker) takes them",
        edition_id,
    )
    return False


def note_in_flight(store: DeliveryStore, edition_id: int, report: DeliveryReport) -> None:
    """Name in the report the edition's rows another sender holds, and when they come back."""
    state = store.outbox_state(edition_id)
    report.in_flight, report.back_at = state.in_flight, state.last_back
