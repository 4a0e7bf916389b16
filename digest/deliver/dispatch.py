"""The dispatcher: turns an edition's delivery rows into messages and records every outcome.

Rows are claimed in batches (marked 'sending' before anything leaves), personalised from the
edition's MessageTemplate, handed to the Sender, and each result recorded. A transport that
stops entirely leaves the rows it never tried back in 'pending' for the next run.

A claim holds its rows with a lease, renewed every third of it while the batch is out, so a
second sender (cron's `digest send` while the daemon runs) never takes a slow batch as if
its sender had died. Results are recorded only on rows the claim still holds (its token).

A transport with ``wants_fields = True`` (the HTTP API providers) gets each message as
MessageFields (subject, bodies with tokens, this recipient's values and list headers)
instead of MIME bytes; the SMTP and Maildir path is unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from digest.deliver.base import Sender
from digest.deliver.limits import ErrorBudget, RateLimiter
from digest.errors import DeliveryError
from digest.records import OutgoingMessage, Recipient, SendResult
from digest.render import MessageTemplate
from digest.render.message import HeaderInjection
from digest.store import Delivery, Subscriber, utcnow
from digest.store.deliveries import OutboxState
from digest.store.tables import DELIVERY_STATES

log = logging.getLogger("digest.deliver")
# The next batch is claimed and built when the one on the wire has had this share of the
# last batch's time on the wire.
AHEAD_AT = 0.7


class DeliveryStore(Protocol):
    """The store methods the dispatcher needs."""

    def queue_deliveries(self, edition_id: int) -> int: ...
    def requeue_deferred(self, edition_id: int) -> int: ...
    def reclaim_expired(self, edition_id: int) -> int: ...
    def suppress_inactive(self, edition_id: int) -> int: ...
    def claim_deliveries(
        self, edition_id: int, limit: int, lease_seconds: float = 300.0
    ) -> list[tuple[Delivery, Subscriber]]: ...
    def renew_lease(self, claim_token: str, lease_seconds: float) -> int: ...
    def finish_deliveries(
        self,
        results: list[tuple[int, str, str, str | None]],
        claim_token: str,
        retry_at: dict[int, datetime] | None = None,
    ) -> int: ...
    def release_deliveries(self, delivery_ids: list[int], claim_token: str) -> None: ...
    def pause_unsent(self, edition_id: int, reason: str) -> int: ...
    def has_pending(self, edition_id: int) -> bool: ...
    def outbox_state(self, edition_id: int) -> OutboxState: ...
    def suppress_subscriber(
        self, subscriber_id: int, status: str = "bounced", by: str = ""
    ) -> bool: ...
    def failed_before(self, subscriber_id: int, edition_id: int, reason: str) -> int | None: ...


@dataclass
class DeliveryReport:
    """What one dispatch did: how many rows ended in each state, and the failures' reasons."""

    queued: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    stopped: str = ""  # the run failed: transport down, error budget spent
    waiting: str = ""  # a sending limit was reached: the rest goes out on a later run
    paused: int = 0  # rows the error budget paused: they wait for `digest retry`
    skipped: Counter[str] = field(default_factory=Counter)  # why rows were skipped -> rows
    # Rows of the edition another sender holds at the end of this run (claimed, lease not
    # run out), and when the last lease runs out: a stopped sender's rows are pending again
    # then, for the next send or a worker.
    in_flight: int = 0
    back_at: datetime | None = None
    for_workers: bool = False  # queued only: `digest worker`s send it ([schedule] send)
    bounced: int = 0  # of the failed: hard bounces, whose addresses are now suppressed
    refusals: Counter[str] = field(default_factory=Counter)  # failed/deferred, by reason

    def counts_line(self) -> str:
        """The rows this run settled, in the words and order `digest status` uses."""
        if self.for_workers:
            return f"{self.queued} queued for the workers (`digest worker` sends them)"
        line = count_words(self.counts)
        if self.bounced:
            line = line.replace(
                f"{self.counts['failed']} failed",
                f"{self.counts['failed']} failed ({self.bounced} bounced: address suppressed)",
            )
        return line

    def in_flight_note(self) -> str:
        """One line naming the rows in flight elsewhere and when they come back, or ""."""
        if not self.in_flight:
            return ""
        when = f"{self.back_at:%Y-%m-%d %H:%M:%S} UTC" if self.back_at else "their lease's end"
        return (
            f"{self.in_flight} in flight, held by another sender; if it stopped, they are "
            f"pending again at {when} and the next send (or a worker) sends them"
        )


async def dispatch(
    store: DeliveryStore,
    sender: Sender,
    template_for: Callable[[Subscriber], MessageTemplate | None],
    recipient_for: Callable[[Subscriber], Recipient],
    edition_id: int,
    batch_size: int = 200,
    lease_seconds: float = 300.0,
    limiter: RateLimiter | None = None,
    budget: ErrorBudget | None = None,
    signer: Callable[[bytes], bytes] | None = None,
    queue_all: bool = True,
    retry_after: Callable[[int], float] | None = None,
    stop: Callable[[], bool] | None = None,
) -> DeliveryReport:
    """Deliver the edition to every active subscriber who has not had it yet.

    ``stop``: asked before each claim; when it says so, the run ends after the batch on
    the wire (a worker's SIGTERM, a scheduler that lost its lead).

    Before the first batch: new subscribers are queued, deferred rows get their one retry
    of this run, rows whose sender died (lease expired) are taken back, and rows of people
    who left since are marked suppressed.
    """
    # A local-time digest's bucket was queued by the caller; anyone else waits for theirs.
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
    wants_fields = getattr(sender, "wants_fields", False)

    async def prepare(ahead: bool = False) -> _Batch | None:
        """Take tokens, claim a batch and build its messages (rows decided here, skipped
        or refused, are recorded at once). None: nothing claimed (see report.waiting).
        ``ahead``: claimed while a batch is on the wire, so it never waits for a limit
        (None when one has no room now: the batch on the wire may be what fills it)."""
        if limiter and ahead:
            allowed = limiter.try_acquire(batch_size)
            if allowed == 0:
                return None
        elif limiter and not limiter.ready() and not store.has_pending(edition_id):
            return None  # nothing left to send: no wait on a limit to find that out
        else:
            allowed = await limiter.acquire(batch_size) if limiter else batch_size
        if allowed == 0:
            assert limiter is not None
            report.waiting = (
                f"{limiter.exhausted()} is reached; the rest stays queued for a later run"
            )
            log.warning("delivery paused: %s", report.waiting)
            return None
        claimed = store.claim_deliveries(edition_id, allowed, lease_seconds)
        if not claimed:
            if limiter:
                limiter.give_back(allowed)  # the limiter may go on to the run's next edition
            return None
        token = claimed[0][0].claim_token
        assert token is not None
        claim = _Claim(store, token, len(claimed), edition_id, lease_seconds)
        claim.start_renewing()  # from the claim on: it may wait while the batch before sends
        batch = _Batch(claim, allowed)
        settled: list[SendResult] = []  # rows decided here: skipped, or refused
        for delivery, subscriber in claimed:
            assert delivery.id is not None
            batch.tries[delivery.id] = delivery.attempts
            if subscriber.id is not None:
                batch.owners[delivery.id] = subscriber.id
            template = template_for(subscriber)  # one per time zone and language, built once
            if template is None:  # nothing of this edition is in their topics
                detail = f"no story of this edition is in their topics ({subscriber.topics})"
                settled.append(SendResult(delivery.id, "skipped", detail))
                continue
            recipient = recipient_for(subscriber)
            try:
                message = _message(
                    template, recipient, delivery.id, subscriber.email, wants_fields, signer
                )
            except HeaderInjection as exc:  # this row fails, the others go on
                settled.append(_refused(store, delivery.id, subscriber, edition_id, str(exc)))
                continue
            batch.messages.append(message)
        if limiter:  # tokens for rows not there, skipped or refused here: nothing went out
            limiter.give_back(allowed - len(batch.messages))
        if settled:
            _record(
                claim,
                settled,
                {},
                {r.delivery_id: "" for r in settled},
                {d.id: s.email for d, s in claimed if d.id is not None},
                report,
            )
        return batch

    def put_back(batch: _Batch | None) -> None:
        """A batch claimed ahead that will not be sent: its rows go back to pending."""
        if batch is None:
            return
        batch.claim.stop_renewing()
        store.release_deliveries(list(batch.ids), batch.claim.token)
        if limiter:
            limiter.give_back(len(batch.messages))

    # Batch N+1 is claimed and built while batch N is on the wire (the SMTP transport sends
    # from threads, so the event loop is free meanwhile): the sessions do not idle between
    # batches. From the second batch on, at AHEAD_AT of the last batch's time on the wire;
    # at most one batch is held ahead; a stop, a stopped transport or a spent error budget
    # releases it unsent.
    upcoming: _Batch | None = None
    wire_time: float | None = None  # the last batch's seconds on the wire
    while True:
        if stop is not None and stop():
            put_back(upcoming)
            log.warning("edition %d: stopping after the batch in flight, as asked", edition_id)
            _note_in_flight(store, edition_id, report)
            return report
        batch, upcoming = upcoming or await prepare(), None
        if batch is None:
            if report.waiting or (stop is not None and stop()):
                return report
            if await _more_to_claim(store, edition_id, report):
                continue
            return report
        on_wire = asyncio.create_task(sender.send_batch(batch.messages))
        wire_started = time.monotonic()
        ahead_failed: Exception | None = None  # raised once this batch is recorded
        if wire_time is not None and not (stop is not None and stop()):
            # Claim ahead near the end of this batch's expected time on the wire (the last
            # one's), not at its start: a slow server's batch takes seconds, and a batch
            # held ahead all that time is work the other workers cannot take.
            await asyncio.wait({on_wire}, timeout=AHEAD_AT * wire_time)
            if not on_wire.done():
                try:
                    upcoming = await prepare(ahead=True)
                except Exception as exc:  # the database: the batch on the wire is recorded
                    ahead_failed = exc
        try:
            results = await on_wire
        except DeliveryError as exc:
            batch.claim.stop_renewing()
            done = _record(
                batch.claim,
                [r for r in exc.results if isinstance(r, SendResult)],
                batch.owners,
                batch.ids,
                batch.emails,
                report,
                _retry_times(batch.tries, retry_after),
            )
            store.release_deliveries([i for i in batch.ids if i not in done], batch.claim.token)
            put_back(upcoming)
            report.stopped = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
            # The report carries it to whoever prints the run (the CLI, the daemon's log
            # line): logged as an error here too, it was said twice.
            log.info("delivery stopped: %s", report.stopped)
            return report
        except BaseException:
            batch.claim.stop_renewing()
            put_back(upcoming)
            raise
        wire_time = time.monotonic() - wire_started
        batch.claim.stop_renewing()
        _record(
            batch.claim,
            results,
            batch.owners,
            batch.ids,
            batch.emails,
            report,
            _retry_times(batch.tries, retry_after),
        )
        if ahead_failed is not None:
            raise ahead_failed
        if budget is not None:
            budget.record(len(results), sum(1 for r in results if r.status != "sent"))
            if reason := budget.exceeded(edition_id):
                put_back(upcoming)
                # Paused until the admin says so: no later run or retry tick tries the rest
                # against the same refusals.
                report.paused = store.pause_unsent(edition_id, reason)
                report.stopped = reason
                log.info("delivery stopped, %d deliveries paused: %s", report.paused, reason)
                return report


@dataclass
class _Batch:
    """One claimed batch, built: its messages, and what recording their results needs."""

    claim: _Claim
    allowed: int  # tokens the limiter granted for it
    messages: list[OutgoingMessage] = field(default_factory=list)
    tries: dict[int, int] = field(default_factory=dict)  # delivery id -> attempts so far
    owners: dict[int, int] = field(default_factory=dict)  # delivery id -> subscriber id

    @property
    def ids(self) -> dict[int, str]:
        """Message-ID of each row going out."""
        return {m.delivery_id: m.message_id for m in self.messages}

    @property
    def emails(self) -> dict[int, str]:
        """Address of each row going out."""
        return {m.delivery_id: m.recipient for m in self.messages}


def count_words(counts: Mapping[str, int]) -> str:
    """Rows per state as "3 sent, 1 deferred, 1 failed": one wording for every command
    (the row's state, as stored), in the order a row moves through them."""
    order = {state: i for i, state in enumerate(DELIVERY_STATES)}
    return ", ".join(
        f"{n} {state}"
        for state, n in sorted(counts.items(), key=lambda kv: order.get(kv[0], 99))
        if n
    )


def _reason(detail: str) -> str:
    """A refusal's reason without its address or ids: the server's code and first words."""
    return " ".join(detail.split()[:6])[:80] or "no reason given"


async def _more_to_claim(store: DeliveryStore, edition_id: int, report: DeliveryReport) -> bool:
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


def _note_in_flight(store: DeliveryStore, edition_id: int, report: DeliveryReport) -> None:
    state = store.outbox_state(edition_id)
    report.in_flight, report.back_at = state.in_flight, state.last_back


@dataclass
class _Claim:
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

    def start_renewing(self) -> None:
        """Renew the lease every third of it until ``stop_renewing`` (the first renewal
        comes after a third: the claim has just set it)."""
        self.renewing = asyncio.create_task(self._renew(first_wait=True))

    def stop_renewing(self) -> None:
        """Stop renewing (the batch is recorded, released, or the run ends)."""
        if self.renewing is not None:
            self.renewing.cancel()
            self.renewing = None

    async def _renew(self, first_wait: bool = False) -> None:
        if first_wait:
            await asyncio.sleep(self.lease_seconds / 3)
        while True:
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
                if held < self.held:
                    self._taken(self.held - held)
            await asyncio.sleep(self.lease_seconds / 3)

    def finish(
        self,
        results: list[tuple[int, str, str, str | None]],
        retry_at: dict[int, datetime] | None,
    ) -> None:
        """Record the results on the rows the claim still holds; say so if some were lost."""
        recorded = self.store.finish_deliveries(results, self.token, retry_at)
        if recorded < len(results):
            self._taken(len(results) - recorded)
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


def _record(
    claim: _Claim,
    results: list[SendResult],
    owners: dict[int, int],
    ids: dict[int, str],
    emails: dict[int, str],
    report: DeliveryReport,
    retry_at: Callable[[int], datetime] | None = None,
) -> set[int]:
    done = set()
    # A hard bounce (5.1.x: no such user, no such domain) fails the row and suppresses the
    # subscriber, so no later edition is sent to a dead address.
    claim.finish(
        [
            (
                r.delivery_id,
                "failed" if r.status == "bounced" else r.status,
                r.detail,
                ids[r.delivery_id],
            )
            for r in results
        ],
        {r.delivery_id: retry_at(r.delivery_id) for r in results if r.status == "deferred"}
        if retry_at
        else None,
    )
    for result in results:
        if result.status == "bounced" and result.delivery_id in owners:
            claim.store.suppress_subscriber(
                owners[result.delivery_id], "bounced", "a bounce (the server refused the address)"
            )
        report.counts["failed" if result.status == "bounced" else result.status] += 1
        report.bounced += result.status == "bounced"
        done.add(result.delivery_id)
        if result.status == "skipped":
            report.skipped[result.detail] += 1
            log.info("delivery to %s skipped: %s", emails[result.delivery_id], result.detail)
        elif result.status != "sent":
            # Logged here once; the CLI prints the report's totals per reason, not each line
            # again.
            line = f"{emails[result.delivery_id]}: {result.status}: {result.detail}"
            report.problems.append(line)
            report.refusals[f"{result.status}: {_reason(result.detail)}"] += 1
            log.warning("delivery to %s", line)
    return done


def _refused(
    store: DeliveryStore, delivery_id: int, subscriber: Subscriber, edition_id: int, reason: str
) -> SendResult:
    """A row whose message cannot be built from the reader's own data (an address with no
    ASCII form, say): failed with the reason the first time, so the run reports it, and
    skipped on every later edition until the data is fixed, so it is not reported daily."""
    failed = f"{reason} (later editions skip this reader until it is fixed)"
    first = store.failed_before(subscriber.id or 0, edition_id, failed)
    if first is None:
        return SendResult(delivery_id, "failed", failed)
    return SendResult(
        delivery_id,
        "skipped",
        f"{reason} (reported when edition {first} failed on it; skipped until it is fixed)",
    )


def _message(
    template: MessageTemplate,
    recipient: Recipient,
    delivery_id: int,
    email: str,
    wants_fields: bool,
    signer: Callable[[bytes], bytes] | None,
) -> OutgoingMessage:
    """One row's message: fields for an HTTP API, or MIME bytes (DKIM-signed if configured)."""
    if wants_fields:  # an HTTP API builds its own MIME from fields
        return OutgoingMessage(
            delivery_id,
            template.sender,
            email,
            template.message_id(recipient, delivery_id),
            b"",
            template.fields(recipient),
        )
    message_id, data = template.personalise(recipient, delivery_id)
    if signer is not None:
        data = signer(data)
    sender = recipient.bounce_address or template.sender  # VERP: bounces name the subscriber
    return OutgoingMessage(delivery_id, sender, email, message_id, data)


def _retry_times(
    tries: dict[int, int], retry_after: Callable[[int], float] | None
) -> Callable[[int], datetime] | None:
    """When each deferred row of this batch may be tried again (None: at the next run)."""
    if retry_after is None:
        return None
    now = utcnow()
    return lambda delivery_id: now + timedelta(seconds=retry_after(tries.get(delivery_id, 1)))
