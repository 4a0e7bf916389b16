"""Whether a server's "user unknown" (a hard bounce, 5.1.x) is believed: a believed one
suppresses its reader; a doubted one is a plain failure that suppresses nobody.

A run records each such refusal as doubted (``held_for_weighing``) and weighs them all
once it ends (``weigh_refusals``, from the dispatcher's loop): the one decision point, on
the whole run's answers. Judged batch by batch, the first batch decided alone: an old
import's dead addresses, the lowest ids and so claimed first, outnumbered its acceptances
and were doubted every edition, in the same order, for ever. Each run weighs its own
answers: several workers sending one edition each weigh theirs. A run that stops before
its end (a crash, a kill) leaves its refusals doubted, which the rule's second part reads
as evidence on the next edition; a stop asked for (a worker's SIGTERM) still weighs what
the run sent.

The rule, written once here:

1. Over the edition (the run's answers with those its other runs recorded: a run of one
   row left over is no list of one): when the server refused more readers as unknown
   than it took, two or more, its bounces are doubted; so are two or more that came
   after the run's last batch it took anything of (``after_the_last_taken``). A relay
   answering "5.1.1 user unknown" to everyone, or to all but the one address it knows
   (a Postfix that takes the readers' domain for its own), is misconfigured, and
   suppressing on its word would end the list's subscriptions; an ordinary list's dead
   addresses are a few in a hundred. One lone bounce (a list of one) is believed, unless
   nothing else of the edition got through.
2. Across editions: a doubted refusal stays on its row as evidence (failed, its reason
   saying "not suppressed"). When the same reader is refused as unknown again by an
   edition at least ``REPEAT_GAP`` later (another day), every answer for them in between
   having been such a refusal too, and the server has meanwhile accepted other readers of
   this run, it is believed: an address refused on two days while the server takes
   others is gone. This is what ends a small list's dead addresses (two gone of three),
   which part 1 doubts for ever. It is not believed when the server accepted no one (a
   relay refusing everyone, or a list of two whose both are gone, looks the same every
   day), nor when the edition has more than ``REPEAT_AT_MOST`` readers refused as
   unknown: a relay that refuses all but the few addresses it knows would otherwise end the list's
   subscriptions on its second day, while a small list's dead are a few. Those stay
   doubted, and the row, the run's output and `digest status` say so with the fix
   (``digest.states.StillDoubted``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from digest.deliver.batches import RefusalStore, Row
from digest.deliver.report import DeliveryReport, UnknownRefusal, refusal_reason
from digest.records import SendResult
from digest.states import DeliveryStatus, SendStatus, StillDoubted
from digest.store.refusals import Attempt, EditionAnswers
from digest.store.trouble import database_words

log = logging.getLogger("digest.deliver")

# A repeated refusal counts from an edition at least this long after the one it repeats:
# another day's attempt (a daily digest's next edition, however late either ran), not a
# retry or a twice-daily digest's evening edition, which a passing fault of the relay
# (a deploy, a map being rebuilt) may span.
REPEAT_GAP = timedelta(hours=20)
# At most this many readers refused as unknown in the run for a repetition to be believed.
REPEAT_AT_MOST = 3

# Every doubted refusal's reason carries this (those of rows recorded before the rule's
# second part too): the evidence a later edition looks for.
DOUBTED = " (not suppressed: "

# The reason a refusal is recorded with until the run weighs it; a run stopped before its
# end leaves it so (evidence for the next edition, like any doubted one).
UNWEIGHED = (
    f"{DOUBTED}weighed against the run's other answers when it ends; a run stopped before "
    "then leaves it doubted, and refused so again on a later day while the server accepts "
    "others, it is suppressed)"
)

NOT_BELIEVED = (
    f"{DOUBTED}the server refused more of this run's readers as unknown than it took, so "
    "the fault is likely its own, a relay that refuses every address or a whole domain; "
    "`digest retry EDITION` once it is mended, or `digest subscribers remove EMAIL` for an "
    "address truly gone; refused so again on a later day while the server accepts others, "
    "it is suppressed)"
)

AFTER_THE_LAST_TAKEN = (
    f"{DOUBTED}the server took no message of this run after refusing it and others as "
    "unknown, as a relay whose recipient map broke mid-run does; `digest retry EDITION` "
    "once it is mended, or `digest subscribers remove EMAIL` for an address truly gone; "
    "refused so again on a later day, it is suppressed)"
)

FIRST_PAUSE = 0.5  # seconds before the settling write's second try; doubling


def held_for_weighing(
    results: list[SendResult], rows: Mapping[int, Row], report: DeliveryReport
) -> list[SendResult]:
    """``results`` as recorded: each hard bounce a failure recorded as doubted
    (``UNWEIGHED``), noted in ``report`` for the run's end to weigh (the report counts it
    as the server's word, a bounce, until then)."""
    held = []
    report.batches_sent += 1
    if any(r.status == SendStatus.SENT for r in results):
        report.last_taken = report.batches_sent
    for result in results:
        if result.status != SendStatus.BOUNCED:
            held.append(result)
            continue
        row = rows[result.delivery_id]
        report.unweighed.append(
            UnknownRefusal(
                row.delivery_id, row.subscriber_id, row.email, result.detail, report.batches_sent
            )
        )
        held.append(replace(result, status=SendStatus.FAILED, detail=result.detail + UNWEIGHED))
    return held


@dataclass
class Verdict:
    """The run's refusals weighed: each row's reason now, and the rows believed."""

    reasons: dict[int, str] = field(default_factory=dict)
    believed: list[UnknownRefusal] = field(default_factory=list)
    doubted: list[UnknownRefusal] = field(default_factory=list)
    still_doubted: dict[str, list[str]] = field(default_factory=dict)


async def weigh_refusals(
    store: RefusalStore, report: DeliveryReport, edition_id: int, patience: float
) -> None:
    """At the run's end: its refusals as unknown weighed on its whole answers (and, when
    those doubt them, each reader's earlier ones, read in a thread), the verdict written
    (reasons, and the believed readers suppressed, in one transaction) and counted in
    ``report``. A database that fails the read doubts them on the counts alone; one that
    fails the write for ``patience`` seconds leaves them doubted, said in the log: the
    next edition refuses them again and suppresses them then (by its own counts, or this
    refusal as the evidence of part 2)."""
    refused, report.unweighed = report.unweighed, []
    if not refused:
        return
    now = store.clock.now()
    answers = run_answers(report, len(refused))
    try:  # the edition's other runs too: a retry of one deferred row is a run of one
        answers = answers.with_edition(
            await asyncio.to_thread(store.edition_answers, edition_id, DOUBTED)
        )
    except SQLAlchemyError as exc:
        log.warning(
            "edition %d: could not count its answers (%s): its refusals as unknown are "
            "weighed on this run's alone",
            edition_id,
            database_words(exc),
        )
    earlier: Mapping[int, Sequence[Attempt]] = {}
    weighed_again = refused if doubted_by_counts(answers) else after_the_last_taken(refused, report)
    if weighed_again:
        readers = [r.subscriber_id for r in weighed_again if r.subscriber_id is not None]
        try:
            earlier = await asyncio.to_thread(store.earlier_attempts, readers, edition_id)
        except SQLAlchemyError as exc:
            log.warning(
                "edition %d: could not read the earlier answers for %d readers refused as "
                "unknown (%s): doubted on this run's counts alone",
                edition_id,
                len(readers),
                database_words(exc),
            )
    verdict = weighed(refused, report, earlier, now, answers)
    bounced = [r.delivery_id for r in verdict.believed]
    reasons = {
        r.delivery_id: (r.detail + UNWEIGHED, verdict.reasons[r.delivery_id]) for r in refused
    }
    settled = await _settled(store, reasons, bounced, edition_id, patience)
    believed = verdict.believed if settled else []
    report.bounced += len(believed) - len(refused)  # counted as bounces when recorded
    report.doubted += len(refused) - len(believed)
    if settled:
        for why, emails in verdict.still_doubted.items():
            report.still_doubted.setdefault(why, []).extend(emails)
    suppressed = {r.delivery_id for r in believed}
    doubted = [r for r in refused if r.delivery_id not in suppressed]
    for refusal in believed:
        log.info("%s suppressed: %s", refusal.email, verdict.reasons[refusal.delivery_id])
    for refusal in doubted:  # counted as bounces when recorded
        reason = refusal_reason(refusal.detail)
        _recount(report, f"{SendStatus.BOUNCED}: {reason}", -1)
        _recount(report, f"{SendStatus.FAILED}: {reason}", 1)
    if settled and doubted:  # once: a relay refusing everyone refuses thousands
        log.warning(
            "edition %d: %d readers refused as unknown are not suppressed (%s: %s)",
            edition_id,
            len(doubted),
            doubted[0].email,
            verdict.reasons[doubted[0].delivery_id],
        )


@dataclass(frozen=True)
class Answers:
    """The answers the rule weighs refusals against: readers taken, failed, and of the
    failed those refused as unknown (and not believed)."""

    taken: int
    failed: int
    unknown: int

    def with_edition(self, edition: EditionAnswers) -> Answers:
        """These (a run's) with the rest of its edition's (other runs: the workers sending
        it, a retry of its deferred rows): a run of one row left over weighs its refusal
        against the edition's answers, not alone (a relay refusing everyone took nobody)."""
        return Answers(
            max(self.taken, edition.taken),
            max(self.failed, edition.failed),
            max(self.unknown, edition.saying),
        )


def run_answers(report: DeliveryReport, unknown: int) -> Answers:
    """A run's answers: ``report``'s counts, ``unknown`` refusals among its failed."""
    counts = report.counts
    return Answers(counts[DeliveryStatus.SENT], counts[DeliveryStatus.FAILED], unknown)


def doubted_by_counts(answers: Answers) -> bool:
    """Whether the rule's first part doubts the refusals as unknown."""
    taken, unknown = answers.taken, answers.unknown
    most_refused = unknown >= 2 and unknown > taken
    return most_refused or (not taken and answers.failed > unknown)


def weighed(
    refused: Sequence[UnknownRefusal],
    report: DeliveryReport,
    earlier: Mapping[int, Sequence[Attempt]],
    now: datetime,
    answers: Answers | None = None,
) -> Verdict:
    """The rule on the run's refusals (``earlier``: each reader's earlier answers, newest
    first; ``answers``: the edition's, by default the run's counts in ``report``)."""
    verdict = Verdict()
    answers = answers or run_answers(report, len(refused))
    if not doubted_by_counts(answers):
        trailing = {r.delivery_id for r in after_the_last_taken(refused, report)}
        for refusal in refused:
            first = _refused_before(refusal, earlier, now)
            if refusal.delivery_id not in trailing:
                verdict.believed.append(refusal)
                verdict.reasons[refusal.delivery_id] = refusal.detail
            elif first is not None:  # refused so on a later day: the tail is no evidence
                verdict.believed.append(refusal)
                verdict.reasons[refusal.delivery_id] = refusal.detail + _believed_again(first, now)
            else:
                verdict.doubted.append(refusal)
                verdict.reasons[refusal.delivery_id] = refusal.detail + AFTER_THE_LAST_TAKEN
        return verdict
    taken, unknown = answers.taken, answers.unknown
    for refusal in refused:
        first = _refused_before(refusal, earlier, now)
        if first is not None and taken and unknown <= REPEAT_AT_MOST:
            verdict.believed.append(refusal)
            reason = refusal.detail + _believed_again(first, now)
        else:
            verdict.doubted.append(refusal)
            reason = _doubted(refusal, verdict, first, taken, unknown)
        verdict.reasons[refusal.delivery_id] = reason
    return verdict


def after_the_last_taken(
    refused: Sequence[UnknownRefusal], report: DeliveryReport
) -> list[UnknownRefusal]:
    """The refusals that came after the run's last batch the server took anything of, when
    two or more did: a relay whose recipient map broke mid-run (a deploy, a map rebuilt)
    refuses everyone from then on, while its earlier acceptances outnumber them (the error
    budget stops a run only after a fifth of it is refused). Doubted the first time;
    refused so again on a later day, believed."""
    trailing = [r for r in refused if r.batch > report.last_taken]
    return trailing if len(trailing) >= 2 else []


def _refused_before(
    refusal: UnknownRefusal, earlier: Mapping[int, Sequence[Attempt]], now: datetime
) -> datetime | None:
    if refusal.subscriber_id is None:
        return None
    return refused_before(earlier.get(refusal.subscriber_id, ()), now)


def refused_before(attempts: Sequence[Attempt], now: datetime) -> datetime | None:
    """When the reader was last refused as unknown (doubted) at least ``REPEAT_GAP``
    before ``now``, every answer for them since being such a refusal too; None when
    ``attempts`` (newest first) hold no such refusal."""
    for attempt in attempts:
        if attempt.status != DeliveryStatus.FAILED or DOUBTED not in attempt.error:
            return None  # accepted, or refused for another reason, since
        if attempt.at <= now - REPEAT_GAP:
            return attempt.at
    return None


async def _settled(
    store: RefusalStore,
    reasons: Mapping[int, tuple[str, str]],
    bounced: Sequence[int],
    edition_id: int,
    patience: float,
) -> bool:
    """The verdict written, tried again with a growing pause for ``patience`` seconds;
    whether it went through (a failure is logged: the rows stay doubted)."""
    started, pause = time.monotonic(), FIRST_PAUSE
    while True:
        try:
            await asyncio.to_thread(store.settle_refusals, reasons, bounced)
            return True
        except SQLAlchemyError as exc:
            left = patience - (time.monotonic() - started)
            if left <= 0:
                log.warning(
                    "edition %d: could not record the verdict on %d readers refused as "
                    "unknown (%s): they stay doubted, nobody suppressed; the next edition "
                    "that is refused so for them suppresses them",
                    edition_id,
                    len(reasons),
                    database_words(exc),
                )
                return False
        await asyncio.sleep(min(pause, left))
        pause *= 2


def _recount(report: DeliveryReport, reason: str, by: int) -> None:
    report.refusals[reason] += by
    if report.refusals[reason] <= 0:
        del report.refusals[reason]


def _believed_again(first: datetime, now: datetime) -> str:
    return (
        f" (suppressed: refused as unknown on {first:%Y-%m-%d} and {now:%Y-%m-%d} while "
        "the server accepted others)"
    )


def _doubted(
    refusal: UnknownRefusal, verdict: Verdict, first: datetime | None, taken: int, unknown: int
) -> str:
    """The reason of a refusal the rule doubts: why (and, refused again, what the admin
    does about it, the reader named in ``verdict``)."""
    if first is None:
        return refusal.detail + NOT_BELIEVED
    why = StillDoubted.TOO_MANY_REFUSED if taken else StillDoubted.NO_ONE_ACCEPTED
    verdict.still_doubted.setdefault(why, []).append(refusal.email)
    many = (
        f" ({unknown} in the run, more than it accepted and more than {REPEAT_AT_MOST})"
        if taken
        else ""
    )
    return (
        f"{refusal.detail}{DOUBTED}{why}{many}, as on {first:%Y-%m-%d}: if {refusal.email} "
        f"is really gone, `digest subscribers remove {refusal.email}`; if not, check the relay)"
    )
