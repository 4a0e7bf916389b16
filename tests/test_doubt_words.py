"""The words a doubted "user unknown" leaves on its row are the evidence a later edition
reads (``doubts.refused_before``) and what `digest status` finds still-doubted rows by
(``Store.editions_failed_saying``): written and read through the same constants, pinned
here so that a reworded message cannot break the rule silently. Rows already stored carry
the words as they are: a rewording must keep reading the old ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digest.deliver.batches import Row
from digest.deliver.doubts import (
    DOUBTED,
    REPEAT_AT_MOST,
    REPEAT_GAP,
    held_for_weighing,
    refused_before,
    weighed,
)
from digest.deliver.report import DeliveryReport, UnknownRefusal
from digest.records import SendResult
from digest.states import DeliveryStatus, SendStatus, StillDoubted
from digest.store.refusals import Attempt

NOW = datetime(2026, 12, 8, 7, 5, tzinfo=UTC)
BEFORE = NOW - REPEAT_GAP - timedelta(hours=1)
SERVER = "550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown"


def test_the_evidence_words_are_those_rows_already_carry() -> None:
    """Every doubted row recorded so far says this; changed, their evidence is lost."""
    assert DOUBTED == " (not suppressed: "
    assert {str(why) for why in StillDoubted} == {
        "refused as unknown again while the server accepted no one",
        "refused as unknown again along with too many others at once",
    }


def _run(unknown: int, taken: int) -> tuple[list[UnknownRefusal], DeliveryReport]:
    """A run's refusals and counts: ``unknown`` readers refused as unknown, ``taken`` sent."""
    report = DeliveryReport()
    report.counts[DeliveryStatus.SENT] = taken
    report.counts[DeliveryStatus.FAILED] = unknown
    refused = [UnknownRefusal(i, i, f"gone{i}@example.org", SERVER) for i in range(1, unknown + 1)]
    return refused, report


def _is_evidence(reason: str) -> bool:
    return refused_before([Attempt(DeliveryStatus.FAILED, reason, BEFORE)], NOW) == BEFORE


def test_a_refusal_recorded_before_its_run_weighed_it_is_evidence() -> None:
    report = DeliveryReport()
    bounce = [SendResult(1, SendStatus.BOUNCED, SERVER)]
    (held,) = held_for_weighing(bounce, {1: Row(1, 1, "gone@example.org", 1)}, report)
    assert held.status == SendStatus.FAILED and held.detail.startswith(SERVER)
    assert _is_evidence(held.detail)


@pytest.mark.parametrize(
    ("unknown", "taken", "why"),
    [
        (2, 1, None),  # doubted by the counts, refused the first time
        (2, 0, StillDoubted.NO_ONE_ACCEPTED),
        (REPEAT_AT_MOST + 1, 1, StillDoubted.TOO_MANY_REFUSED),
    ],
)
def test_every_doubted_reason_is_evidence_and_still_doubted_ones_name_why(
    unknown: int, taken: int, why: StillDoubted | None
) -> None:
    refused, report = _run(unknown, taken)
    earlier = (
        {}
        if why is None
        else {
            r.delivery_id: [Attempt(DeliveryStatus.FAILED, SERVER + DOUBTED, BEFORE)]
            for r in refused
        }
    )
    verdict = weighed(refused, report, earlier, NOW)
    assert verdict.believed == [] and len(verdict.doubted) == unknown
    for reason in verdict.reasons.values():
        assert reason.startswith(SERVER) and _is_evidence(reason), reason
        if why is not None:
            assert str(why) in reason  # what `digest status` finds the row by
    assert list(verdict.still_doubted) == ([] if why is None else [why])


def test_a_believed_reason_is_no_evidence() -> None:
    """Believed again, the reader is suppressed; the row's words are not a doubt."""
    refused, report = _run(2, 1)
    earlier = {
        r.delivery_id: [Attempt(DeliveryStatus.FAILED, SERVER + DOUBTED, BEFORE)] for r in refused
    }
    verdict = weighed(refused, report, earlier, NOW)
    assert len(verdict.believed) == 2
    for reason in verdict.reasons.values():
        assert "(suppressed: refused as unknown on" in reason and not _is_evidence(reason)
