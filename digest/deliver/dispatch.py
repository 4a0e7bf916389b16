"""The dispatcher: turns an edition's delivery rows into messages and records every outcome.

Rows are claimed in batches (marked 'sending' before anything leaves), personalised from the
edition's MessageTemplate, handed to the Sender, and each result recorded: claim, build,
send, record (the batch, its rows and its lease are in ``digest.deliver.batches``). A
transport that stops leaves the rows it never tried in 'pending' for the next run.

A transport with ``wants_fields = True`` (the HTTP API providers) gets each message as
MessageFields (subject, bodies with tokens, this recipient's values and list headers)
instead of MIME bytes; the SMTP and Maildir path is unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from digest.deliver.base import Sender
from digest.deliver.batches import (
    Batch,
    Claim,
    DeliveryStore,
    Row,
    message,
    more_to_claim,
    note_in_flight,
    record,
    refused,
)
from digest.deliver.doubts import weigh_refusals
from digest.deliver.limits import ErrorBudget, RateLimiter
from digest.deliver.recording import Recorder
from digest.deliver.report import DeliveryReport, count_words
from digest.deliver.settings import DispatchSettings
from digest.errors import DeliveryError
from digest.records import Reader, Recipient, SendResult
from digest.render import MessageTemplate
from digest.render.message import HeaderInjection
from digest.states import SendStatus
from digest.store.claims import ClaimedRow

__all__ = ["DeliveryReport", "DeliveryStore", "DispatchSettings", "count_words", "dispatch"]

log = logging.getLogger("digest.deliver")
# After a batch slower than AHEAD_AT_ONCE_UNDER, the next is claimed and built when the
# one on the wire has had this share of the last batch's time on the wire at the latest;
# earlier when claiming and building the last one ahead took longer than the rest (with
# MARGIN to spare), so it is ready in time. A run's first batch claims none ahead: how slow
# the server is is not known yet, and a batch held ahead all through a slow first batch is
# work the other workers cannot take (with few rows, all of it).
AHEAD_AT = 0.7
MARGIN = 1.5
# After a batch shorter on the wire than this (seconds), the next is claimed ahead as soon
# as the batch goes out: held ahead for less than a second, a batch costs the other workers
# nothing they would notice, and built at once it is surely ready when the sessions are.
# (Into a fast server a batch of 500 is on the wire ~70 ms, its claim and build take
# 30-50 ms of it; waiting for AHEAD_AT left the sessions idle whenever the build ran late.)
AHEAD_AT_ONCE_UNDER = 1.0
# Messages built between two moments the build of a batch ahead lets go of the GIL (and
# the core). The batch ahead is built on the event loop's thread while the SMTP sessions'
# threads send; a session woken by the server's reply waits for the GIL, which a thread
# that never blocks gives up only at the switch interval (5 ms): meanwhile every session
# has its reply and the server nothing to read. ``os.sched_yield`` (Unix only) releases
# it in its system call. One worker into smtp-sink, 5 runs each way: 5,876 -> 6,198 msg/s
# (bench/README "issue 18, point 6"); a shorter switch interval cost more CPU than it saved.
YIELD_EVERY = 16
_yield_gil: Callable[[], None] = getattr(os, "sched_yield", lambda: None)


async def dispatch(
    store: DeliveryStore,
    sender: Sender,
    template_for: Callable[[Reader], MessageTemplate | None],
    recipient_for: Callable[[Reader], Recipient],
    edition_id: int,
    settings: DispatchSettings | None = None,
    *,
    limiter: RateLimiter | None = None,
    queue_all: bool = True,
    stop: Callable[[], bool] | None = None,
    skip_reason: Callable[[Reader], str] | None = None,
) -> DeliveryReport:
    """Deliver the edition to every active subscriber who has not had it yet.

    ``limiter``: the sending limits (shared by every edition of a run). ``stop``: asked
    before each claim; when it says so, the run ends after the batch on the wire (a
    worker's SIGTERM, a scheduler that lost its lead). Without ``queue_all`` nobody new is
    queued (a local-time digest's bucket was queued by the caller). ``skip_reason``: what a
    reader nothing of the edition is for is recorded as skipped for (by default
    ``no_story_in_topics``).

    Before the first batch: new subscribers are queued, deferred rows get their one retry
    of this run, rows whose sender died (lease expired) are taken back, and rows of people
    who left since are marked suppressed.
    """
    report = DeliveryReport(queued=store.queue_deliveries(edition_id) if queue_all else 0)
    store.requeue_deferred(edition_id)  # rows claimed below are each tried once per run
    reclaimed = store.reclaim_expired(edition_id)
    if reclaimed:
        log.warning(
            "%d deliveries of edition %d were in flight when their sender stopped; "
            "sending them again",
            reclaimed,
            edition_id,
        )
    store.suppress_inactive(edition_id)
    run = _Run(
        store,
        sender,
        template_for,
        recipient_for,
        edition_id,
        settings or DispatchSettings(),
        report,
        limiter,
        stop,
        skip_reason or no_story_in_topics,
    )
    return await run.loop()


def no_story_in_topics(reader: Reader) -> str:
    """Why a reader is skipped: none of the edition's stories is in their topics."""
    return f"no story of this edition is in their topics ({reader.topics})"


@dataclass
class _Run:
    """One dispatch of one edition: the loop and its claim / build / send / record steps.

    Batch N+1 is claimed and built while batch N is on the wire (the SMTP transport sends
    from threads, so the event loop is free meanwhile), and batch N's results are recorded
    once N+1 is on the wire: the sessions do not idle between batches. The claim ahead comes
    as the batch goes out while batches are quick, else timed to be ready when the batch on
    the wire ends (``ahead_wait``); at most one batch is held ahead (``upcoming``) and one
    sent batch waits for its record (``unrecorded``: recorded on every way out of the loop,
    an error included). A stop, a stopped transport or a spent error budget (judged before
    the next batch goes out) releases the batch ahead unsent. A row's attempt is counted
    when its batch goes on the wire, not at the claim: a batch held ahead by a sender killed
    meanwhile was not tried.
    """

    store: DeliveryStore
    sender: Sender
    template_for: Callable[[Reader], MessageTemplate | None]
    recipient_for: Callable[[Reader], Recipient]
    edition_id: int
    settings: DispatchSettings
    report: DeliveryReport
    limiter: RateLimiter | None = None
    stop: Callable[[], bool] | None = None
    skip_reason: Callable[[Reader], str] = no_story_in_topics
    budget: ErrorBudget | None = field(init=False)  # this run's, from the settings
    upcoming: Batch | None = None  # claimed and built ahead
    wire_time: float | None = None  # the last batch's seconds on the wire
    ahead_time: float = 0.0  # the last claim and build ahead's seconds
    unrecorded: tuple[Batch, list[SendResult]] | None = None  # sent, its record to come
    # The database's error from a claim ahead or the record of the batch before: raised
    # once the batch on the wire has its results (the loop records them on its way out).
    ahead_failed: Exception | None = None

    def __post_init__(self) -> None:
        self.budget = self.settings.budget()

    def stopping(self) -> bool:
        """Whether the caller asked the run to stop."""
        return self.stop is not None and self.stop()

    async def loop(self) -> DeliveryReport:
        """Claim, build, send and record batches until none is left or the run stops (the
        last batch sent recorded however it ends); then weigh its bounces (``doubts``)."""
        try:
            await self._loop()
        finally:
            await self.record_sent()
        await weigh_refusals(self.store, self.report, self.edition_id, self.recorder().patience)
        return self.report

    async def _loop(self) -> DeliveryReport:
        while True:
            if self.stopping():
                await self.record_sent()
                self.put_back(self.upcoming)
                log.warning(
                    "edition %d: stopping after the batch in flight, as asked", self.edition_id
                )
                note_in_flight(self.store, self.edition_id, self.report)
                return self.report
            if self.upcoming is None:
                # Nothing ahead: the batch before is recorded first, as the limits count
                # sends in the database and the outbox's state counts this sender's rows.
                await self.record_sent()
            batch, self.upcoming = self.upcoming or await self.prepare(), None
            if batch is None:
                if self.report.waiting or self.stopping():
                    return self.report
                if await more_to_claim(self.store, self.edition_id, self.report):
                    continue
                return self.report
            results = await self.send(batch)
            if results is None or await self.finish(batch, results):
                return self.report

    async def prepare(self, ahead: bool = False) -> Batch | None:
        """Take tokens, claim a batch and build its messages. None: nothing claimed (see
        report.waiting). ``ahead``: claimed while a batch is on the wire."""
        allowed = await self.tokens(ahead)
        if not allowed:
            return None
        lease, leased_at = self.settings.lease_seconds, time.monotonic()  # (its start at latest)
        claimed = self.store.claim_deliveries(self.edition_id, allowed, lease)
        if not claimed:
            if self.limiter:
                self.limiter.give_back(allowed)  # it may go on to the run's next edition
            return None
        token = claimed[0][0].claim_token
        assert token is not None
        claim = Claim(self.store, token, len(claimed), self.edition_id, lease, leased_at=leased_at)
        claim.start_renewing()  # from the claim on: it may wait while the batch before sends
        batch = Batch(claim, allowed)
        try:
            return self.build(batch, claimed, ahead)
        except BaseException:
            self.abandon(batch, [row.id or 0 for row, _ in claimed])
            raise

    async def tokens(self, ahead: bool) -> int:
        """How many rows the sending limits let this batch claim (0: none). Ahead of time it
        never waits for a limit (0 when one has no room now: the batch on the wire may be
        what fills it)."""
        size, limiter = self.settings.batch_size, self.limiter
        if limiter is None:
            return size
        if ahead:
            return limiter.try_acquire(size)
        if not limiter.ready() and not self.store.has_pending(self.edition_id):
            return 0  # nothing left to send: no wait on a limit to find that out
        allowed = await limiter.acquire(size)
        if allowed == 0:
            self.report.waiting = (
                f"{limiter.exhausted()} is reached; the rest stays queued for a later run"
            )
            log.warning("delivery paused: %s", self.report.waiting)
        return allowed

    def build(
        self, batch: Batch, claimed: Sequence[tuple[ClaimedRow, Reader]], ahead: bool = False
    ) -> Batch:
        """Each claimed row's message into the batch; rows decided here (skipped, or
        refused) are recorded at once."""
        settled: list[SendResult] = []
        rows: dict[int, Row] = {}
        for n, (delivery, subscriber) in enumerate(claimed, 1):
            if ahead and n % YIELD_EVERY == 0:
                _yield_gil()  # releases the GIL: see YIELD_EVERY
            row = rows[delivery.id or 0] = Row.claimed(delivery, subscriber)
            template = self.template_for(subscriber)  # one per zone and language, built once
            if template is None:  # nothing of this edition is in their topics
                detail = self.skip_reason(subscriber)
                settled.append(SendResult(row.delivery_id, SendStatus.SKIPPED, detail))
                continue
            recipient = self.recipient_for(subscriber)
            try:
                built = message(
                    template, recipient, row, self.sender.wants_fields, self.settings.signer
                )
            except HeaderInjection as exc:  # this row fails, the others go on
                settled.append(refused(self.store, row, self.edition_id, str(exc)))
                continue
            batch.add(row, built)
        if self.limiter:  # tokens for rows not there, skipped or refused here: none went out
            self.limiter.give_back(batch.allowed - len(batch.messages))
        if settled:
            record(batch.claim, settled, rows, self.report)
        return batch

    async def send(self, batch: Batch) -> list[SendResult] | None:
        """The batch on the wire, the next one claimed ahead meanwhile; its results, or
        None when the transport stopped (the report says why)."""
        try:
            if batch.messages:  # the attempt is counted now, not at the claim
                dropped = batch.keep(batch.claim.start(batch.rows))
                if self.limiter and dropped:
                    self.limiter.give_back(dropped)
        except BaseException:  # the database: nothing went out; the lease brings them back
            batch.claim.stop_renewing()
            raise
        on_wire = asyncio.create_task(batch.go_out(self.sender))
        # Real seconds on the wire, not the clock's: they pace the claim ahead against the
        # transport's own speed (an event-loop wait), and no stored time depends on them.
        wire_started = time.monotonic()
        self.ahead_failed = None
        await asyncio.sleep(0)  # the transport takes the batch; its sessions are busy now
        try:
            await self.record_sent()  # the batch before, while this one is on the wire
        except Exception as exc:  # the database: this batch's results are kept all the same
            self.ahead_failed = exc
        if self.wire_time is not None and self.ahead_failed is None and not self.stopping():
            # Claim ahead near the end of this batch's expected time on the wire (the last
            # one's), not at its start, when batches are slow: a slow server's batch takes
            # seconds, and a batch held ahead all that time is work the other workers
            # cannot take.
            await asyncio.wait({on_wire}, timeout=self.ahead_wait(wire_started))
            if not on_wire.done():
                started = time.monotonic()
                try:
                    self.upcoming = await self.prepare(ahead=True)
                except Exception as exc:  # the database: the batch on the wire is recorded
                    self.ahead_failed = exc
                self.ahead_time = time.monotonic() - started
        try:
            results = await on_wire
        except DeliveryError as exc:
            await self.recorder().stopped(batch, exc)
            self.put_back(self.upcoming)
            return None
        except BaseException:
            batch.unrecorded()
            self.put_back(self.upcoming)
            raise
        self.wire_time = time.monotonic() - wire_started
        return results

    def ahead_wait(self, wire_started: float) -> float:
        """Seconds from now until the claim ahead: none after a batch quicker than
        AHEAD_AT_ONCE_UNDER; else AHEAD_AT of the last batch's time on the wire at the
        latest, earlier by what the last claim ahead took (with MARGIN)."""
        assert self.wire_time is not None
        if self.wire_time < AHEAD_AT_ONCE_UNDER:
            return 0.0
        at = min(AHEAD_AT * self.wire_time, self.wire_time - MARGIN * self.ahead_time)
        return max(0.0, at - (time.monotonic() - wire_started))

    async def finish(self, batch: Batch, results: list[SendResult]) -> bool:
        """A sent batch: its results wait to be recorded while the next goes out (see
        ``record_sent``), unless the error budget is spent: then they are recorded now and
        the run ends (True)."""
        self.unrecorded = (batch, results)
        if self.ahead_failed is not None:
            raise self.ahead_failed
        if self.budget is None:
            return False
        self.budget.record(len(results), sum(1 for r in results if r.status != SendStatus.SENT))
        reason = self.budget.exceeded(self.edition_id)
        if not reason:
            return False
        await self.record_sent()
        self.put_back(self.upcoming)
        # Paused until the admin says so: no later run tries the rest against the same refusals.
        self.report.paused = self.store.pause_unsent(self.edition_id, reason)
        self.report.stopped = reason
        log.info("delivery stopped, %d deliveries paused: %s", self.report.paused, reason)
        return True

    async def record_sent(self) -> None:
        """Record the sent batch waiting for it, if any (once). The claim keeps its lease
        while the record is retried (``deliver.recording``)."""
        if self.unrecorded is None:
            return
        (batch, results), self.unrecorded = self.unrecorded, None
        await self.recorder().sent(batch, results)

    def recorder(self) -> Recorder:
        """How this run records a sent batch surely (retried for a third of the lease at most)."""
        settings = self.settings
        return Recorder(
            self.report,
            self.retry_at(),
            min(settings.record_retry_seconds, settings.lease_seconds / 3),
            self.store.journal,
        )

    def put_back(self, batch: Batch | None) -> None:
        """A batch claimed ahead that will not be sent: its rows go back to pending."""
        if batch is None:
            return
        batch.claim.release(batch.rows)
        if self.limiter:
            self.limiter.give_back(len(batch.messages))

    def abandon(self, batch: Batch, claimed: Sequence[int]) -> None:
        """A batch whose build failed (the database, a bug): none of it went out, so its rows
        go back to pending now, not after the lease (which its renewal would keep alive).
        Best effort: the error raised is the one to say; the lease ends all the same."""
        with contextlib.suppress(Exception):
            batch.claim.release(claimed)  # renewing stops first, whatever the database does

    def retry_at(self) -> Callable[[Row], datetime] | None:
        """When each deferred row of a batch may be tried again (None: at the next run)."""
        retry_after = self.settings.retry_after
        if retry_after is None:
            return None
        now = self.store.clock.now()
        return lambda row: now + timedelta(seconds=retry_after(row.attempts))
