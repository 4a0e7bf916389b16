"""Whether a server's "user unknown" (a hard bounce, 5.1.x) is believed: a believed one
suppresses its reader; a doubted one is a plain failure that suppresses nobody.

The rule, written once here:

1. Within a run: when the server, over the run so far (the batch being recorded
   included), refused more readers as unknown than it took, two or more, its bounces are
   doubted. A relay answering "5.1.1 user unknown" to everyone, or to all but the one
   address it knows (a Postfix that takes the readers' domain for its own), is
   misconfigured, and suppressing on its word would end the list's subscriptions; an
   ordinary list's dead addresses are a few in a hundred. One lone bounce (a list of one,
   a retry of one row) is believed, unless nothing else of the run got through.
2. Across editions: a doubted refusal stays on its row as evidence (failed, its reason
   saying "not suppressed"). When the same reader is refused as unknown again by an
   edition at least ``REPEAT_GAP`` later (another day), every answer for them in between
   having been such a refusal too, and the server has meanwhile accepted other readers of
   this run, it is believed: an address refused on two days while the server takes
   others is gone. This is what ends a small list's dead addresses (two gone of three),
   which part 1 doubts for ever. It is not believed when the server accepted no one (a
   relay refusing everyone, or a list of two whose both are gone, looks the same every
   day), nor when the run has more than ``REPEAT_AT_MOST`` readers refused as unknown: a
   relay that refuses all but the few addresses it knows would otherwise end the list's
   subscriptions on its second day, while a small list's dead are a few. Those stay
   doubted, and the row, the run's output and `digest status` say so with the fix
   (``digest.states.StillDoubted``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from digest.deliver.batches import Row
from digest.deliver.report import DeliveryReport
from digest.records import SendResult
from digest.states import DeliveryStatus, SendStatus, StillDoubted
from digest.store.engine import database_words
from digest.store.refusals import Attempt

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

NOT_BELIEVED = (
    f"{DOUBTED}the server refused more of this run's readers as unknown than it took, so "
    "the fault is likely its own, a relay that refuses every address or a whole domain; "
    "`digest retry EDITION` once it is mended, or `digest subscribers remove EMAIL` for an "
    "address truly gone; refused so again on a later day while the server accepts others, "
    "it is suppressed)"
)


class RefusalHistory(Protocol):
    """The store's read of the readers' earlier answers, and its clock."""

    def earlier_attempts(
        self, subscriber_ids: Collection[int], edition_id: int, per_reader: int = 50
    ) -> dict[int, list[Attempt]]: ...


async def judged_bounces(
    results: list[SendResult],
    rows: Mapping[int, Row],
    report: DeliveryReport,
    history: RefusalHistory,
    edition_id: int,
    now: datetime,
) -> list[SendResult]:
    """``believed_bounces``, the readers' earlier answers read (in a thread) only when the
    run's own counts doubt a bounce. The batch went out: a database that fails this read
    must not stop its record, so the bounces are then doubted on the counts alone."""
    if not doubted_by_counts(results, report):
        return results
    readers = [
        row.subscriber_id
        for r in results
        if r.status == SendStatus.BOUNCED and (row := rows[r.delivery_id]).subscriber_id is not None
    ]
    try:
        earlier = await asyncio.to_thread(history.earlier_attempts, readers, edition_id)
    except SQLAlchemyError as exc:
        log.warning(
            "edition %d: could not read the earlier answers for %d readers refused as "
            "unknown (%s): doubted on this run's counts alone",
            edition_id,
            len(readers),
            database_words(exc),
        )
        earlier = {}
    return believed_bounces(results, rows, report, earlier, now)


def doubted_by_counts(results: Sequence[SendResult], report: DeliveryReport) -> bool:
    """Whether the rule's first part doubts this batch's bounces (False without any)."""
    bounces = sum(r.status == SendStatus.BOUNCED for r in results)
    if not bounces:
        return False
    taken = _taken(results, report)
    unknown = report.bounced + report.doubted + bounces
    most_refused = unknown >= 2 and unknown > taken
    return most_refused or (not taken and bool(report.counts[DeliveryStatus.FAILED]))


def believed_bounces(
    results: list[SendResult],
    rows: Mapping[int, Row],
    report: DeliveryReport,
    earlier: Mapping[int, Sequence[Attempt]],
    now: datetime,
) -> list[SendResult]:
    """``results`` with each hard bounce the rule doubts made a plain failure whose reason
    says why (``earlier``: each reader's earlier answers, newest first); counted in
    ``report`` (``doubted``, ``still_doubted``)."""
    if not doubted_by_counts(results, report):
        return results
    taken = _taken(results, report)
    unknown = report.bounced + report.doubted + sum(r.status == SendStatus.BOUNCED for r in results)
    judged = []
    for result in results:
        row = rows[result.delivery_id]
        first = (
            refused_before(earlier.get(row.subscriber_id, ()), now)
            if result.status == SendStatus.BOUNCED and row.subscriber_id is not None
            else None
        )
        if result.status != SendStatus.BOUNCED:
            judged.append(result)
        elif first is not None and taken and unknown <= REPEAT_AT_MOST:
            judged.append(replace(result, detail=result.detail + _believed_again(first, now)))
        else:
            judged.append(_doubted(result, row, report, first, taken, unknown))
    return judged


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


def _taken(results: Sequence[SendResult], report: DeliveryReport) -> int:
    """Readers the server accepted in the run so far, this batch included."""
    return report.counts[DeliveryStatus.SENT] + sum(r.status == SendStatus.SENT for r in results)


def _believed_again(first: datetime, now: datetime) -> str:
    return (
        f" (suppressed: refused as unknown on {first:%Y-%m-%d} and {now:%Y-%m-%d} while "
        "the server accepted others)"
    )


def _doubted(
    result: SendResult,
    row: Row,
    report: DeliveryReport,
    first: datetime | None,
    taken: int,
    unknown: int,
) -> SendResult:
    """A bounce the rule doubts, as a plain failure whose reason says why (and, refused
    again, what the admin does about it), counted in ``report``."""
    report.doubted += 1
    if first is None:
        return replace(result, status=SendStatus.FAILED, detail=result.detail + NOT_BELIEVED)
    verdict = StillDoubted.TOO_MANY_REFUSED if taken else StillDoubted.NO_ONE_ACCEPTED
    report.still_doubted.setdefault(verdict, []).append(row.email)
    many = (
        f" ({unknown} in the run, more than it accepted and more than {REPEAT_AT_MOST})"
        if taken
        else ""
    )
    why = (
        f"{DOUBTED}{verdict}{many}, as on {first:%Y-%m-%d}: if {row.email} is really "
        f"gone, `digest subscribers remove {row.email}`; if not, check the relay)"
    )
    return replace(result, status=SendStatus.FAILED, detail=result.detail + why)
