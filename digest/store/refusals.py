"""What a reader's earlier editions said about their address: the evidence a doubted
"user unknown" is weighed against (``digest.deliver.doubts``), the write that settles a
run's refusals once it has weighed them, and the readers an edition left doubted on
repetition, for `digest status`.

A mixin of ``Store``; all SQL stays in ``store/``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, func, update
from sqlalchemy import select as core_select

from digest.states import DeliveryStatus
from digest.store.base import StoreBase
from digest.store.ingest import in_chunks
from digest.store.subscribers import bounced_suppressed
from digest.store.tables import DELIVERIES, SUBSCRIBERS


@dataclass(frozen=True)
class Attempt:
    """One earlier edition's answer for a reader: the row's state, its reason, and when
    it was recorded."""

    status: str
    error: str
    at: datetime


@dataclass(frozen=True)
class EditionAnswers:
    """An edition's rows the server answered, over all its runs: taken, failed, and of the
    failed those whose reason says a given phrase (the refusals as unknown still doubted)."""

    taken: int
    failed: int
    saying: int


@dataclass(frozen=True)
class FailedSaying:
    """An edition's rows doubted on repetition for one reason: how many, and the first
    few addresses (by address)."""

    rows: int
    emails: tuple[str, ...]


class RefusalQueries(StoreBase):
    """The reads behind the doubt of a hard bounce."""

    def earlier_attempts(
        self, subscriber_ids: Collection[int], edition_id: int, per_reader: int = 50
    ) -> dict[int, list[Attempt]]:
        """Each reader's last ``per_reader`` answers from the server on other editions than
        ``edition_id`` (sent or failed rows: skipped, deferred and never-sent ones say
        nothing about the address), newest first. Fifty reach back a day even for a
        digest sent every half hour."""
        found: dict[int, list[Attempt]] = {}
        with self.engine.connect() as connection:
            for chunk in in_chunks(sorted(set(subscriber_ids))):  # a relay refusing 100,000
                for subscriber_id, status, error, at in connection.execute(
                    _answers_of(chunk, edition_id, per_reader)
                ):
                    found.setdefault(int(subscriber_id), []).append(
                        Attempt(str(status), str(error or ""), at)
                    )
        return found

    def edition_answers(self, edition_id: int, phrase: str) -> EditionAnswers:
        """``edition_id``'s rows sent and failed, and its failed rows whose reason says
        ``phrase``: every run's answers for the edition (workers, retries of deferred rows),
        in one aggregate over the edition's rows."""
        failed = DELIVERIES.c.status == DeliveryStatus.FAILED
        query = core_select(
            func.count().filter(DELIVERIES.c.status == DeliveryStatus.SENT),
            func.count().filter(failed),
            func.count().filter(failed, DELIVERIES.c.error.like(_containing(phrase), escape="\\")),
        ).where(DELIVERIES.c.edition_id == edition_id)
        with self.engine.connect() as connection:
            taken, failed_rows, saying = connection.execute(query).one()
        return EditionAnswers(int(taken or 0), int(failed_rows or 0), int(saying or 0))

    def settle_refusals(
        self, reasons: Mapping[int, tuple[str, str]], bounced: Sequence[int]
    ) -> int:
        """A run's refusals as unknown, weighed at its end: each row of ``reasons``
        (delivery id -> the reason the run recorded it with, its reason now) still failed
        with that reason given the new one, and the readers of the rows of ``bounced`` so
        rewritten suppressed as a hard bounce's are, in one transaction. A row put back to
        pending since (`digest retry`), or recorded by another sender that took it (the
        server may have accepted it), keeps what it has and suppresses nobody. The readers
        suppressed."""
        if not reasons:
            return 0
        now = self.clock.now()
        with self.engine.begin() as connection:
            connection.execute(
                update(DELIVERIES)
                .where(
                    DELIVERIES.c.id == bindparam("row_id"),
                    DELIVERIES.c.status == DeliveryStatus.FAILED,
                    DELIVERIES.c.error == bindparam("was"),
                )
                .values(error=bindparam("reason")),  # updated_at: when the server answered
                [
                    {"row_id": i, "was": was, "reason": reason}
                    for i, (was, reason) in reasons.items()
                ],
            )
            rewritten = []  # the rows this transaction holds (locked) with their new reason
            for chunk in in_chunks(bounced):
                rewritten += [
                    int(i)
                    for i, error in connection.execute(
                        core_select(DELIVERIES.c.id, DELIVERIES.c.error).where(
                            DELIVERIES.c.id.in_(chunk),
                            DELIVERIES.c.status == DeliveryStatus.FAILED,
                        )
                    )
                    if int(i) in reasons and error == reasons[int(i)][1]
                ]
            return bounced_suppressed(connection, rewritten, now)

    def editions_failed_saying(
        self, edition_ids: Collection[int], phrase: str, sample: int = 5
    ) -> dict[int, FailedSaying]:
        """Per edition, its failed rows whose reason says ``phrase``: how many, and the
        first ``sample`` addresses; an edition with none is absent. One query for all."""
        if not edition_ids:
            return {}
        pattern = _containing(phrase)
        matching = (
            core_select(
                DELIVERIES.c.edition_id,
                SUBSCRIBERS.c.email,
                func.count().over(partition_by=DELIVERIES.c.edition_id).label("n"),
                func.row_number()
                .over(partition_by=DELIVERIES.c.edition_id, order_by=SUBSCRIBERS.c.email)
                .label("place"),
            )
            .join(SUBSCRIBERS, SUBSCRIBERS.c.id == DELIVERIES.c.subscriber_id)
            .where(
                DELIVERIES.c.edition_id.in_(sorted(set(edition_ids))),
                DELIVERIES.c.status == DeliveryStatus.FAILED,
                DELIVERIES.c.error.like(pattern, escape="\\"),
            )
            .subquery()
        )
        query = (
            core_select(matching.c.edition_id, matching.c.email, matching.c.n)
            .where(matching.c.place <= sample)
            .order_by(matching.c.edition_id, matching.c.place)
        )
        rows: dict[int, int] = {}
        emails: dict[int, list[str]] = {}
        with self.engine.connect() as connection:
            for edition_id, email, n in connection.execute(query):
                rows[int(edition_id)] = int(n)
                emails.setdefault(int(edition_id), []).append(str(email))
        return {e: FailedSaying(rows[e], tuple(emails[e])) for e in rows}


def _containing(phrase: str) -> str:
    """A LIKE pattern (escaped with a backslash) matching text that contains ``phrase``."""
    return "%" + phrase.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _answers_of(subscriber_ids: Sequence[object], edition_id: int, per_reader: int) -> Select[Any]:
    """``earlier_attempts``'s query for one chunk of readers."""
    place = (
        func.row_number()
        .over(
            partition_by=DELIVERIES.c.subscriber_id,
            order_by=(DELIVERIES.c.updated_at.desc(), DELIVERIES.c.id.desc()),
        )
        .label("place")
    )
    answered = (
        core_select(
            DELIVERIES.c.subscriber_id,
            DELIVERIES.c.status,
            DELIVERIES.c.error,
            DELIVERIES.c.updated_at,
            place,
        )
        .where(
            DELIVERIES.c.subscriber_id.in_(subscriber_ids),
            DELIVERIES.c.edition_id != edition_id,
            DELIVERIES.c.status.in_((DeliveryStatus.SENT, DeliveryStatus.FAILED)),
        )
        .subquery()
    )
    return (
        core_select(
            answered.c.subscriber_id,
            answered.c.status,
            answered.c.error,
            answered.c.updated_at,
        )
        .where(answered.c.place <= per_reader)
        .order_by(answered.c.subscriber_id, answered.c.place)
    )
