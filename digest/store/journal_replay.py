"""Recording the journal of unrecorded sends in the database (``store.journal`` is the
file): each entry's rows written as its claim would have, the subscribers of its hard
bounces suppressed, and the rows another sender took back meanwhile named; then the
progress a dead sender left of its batch (``store.journal_progress``): the rows the server
answered recorded, so only the others go out again.

A mixin of ``Store``; all SQL stays in ``store/``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from digest.clock import utc_time
from digest.errors import StoreError
from digest.states import DeliveryStatus
from digest.store.base import StoreBase
from digest.store.claims import FINISHED, finished_rows
from digest.store.delivery_rows import claimable, held_by
from digest.store.journal import JournalEntry, SendJournal, shown_ids
from digest.store.journal_progress import Trace, dead_senders, done
from digest.store.subscribers import bounced_suppressed
from digest.store.tables import DELIVERIES
from digest.store.trouble import database_words

log = logging.getLogger("digest.store")


# A journaled row is written if its claim still holds it, or if it was taken back to
# pending (its lease ran out) and nobody has claimed it since.
_REPLAY = (
    update(DELIVERIES)
    .where(
        DELIVERIES.c.id == bindparam("row_id"),
        or_(
            held_by(bindparam("token")),
            and_(claimable(DeliveryStatus.PENDING), DELIVERIES.c.claim_token.is_(None)),
        ),
    )
    .values(FINISHED)
)


class JournalQueries(StoreBase):
    """Recording the journal of unrecorded sends (``Store`` inherits it)."""

    def replay_journal(self) -> int:
        """Record what the journal holds; the count of rows recorded. The file is read
        under its lock, the entries recorded with it unlocked (a sender keeping a batch is
        not held up by the database), and the recorded ones taken out under the lock again:
        a database error partway leaves only the entries not yet recorded (and is raised:
        nothing is taken back meanwhile). Lines that are no entry go to ``<file>.rejected``."""
        journal = self.journal
        if journal is None:
            return 0
        recorded = self._replay_entries(journal) if journal.waiting() else 0
        return recorded + self._replay_progress(journal)

    def _replay_entries(self, journal: SendJournal) -> int:
        entries, unreadable = journal.snapshot()
        recorded = 0
        done: list[str] = []
        try:
            for entry in entries:
                try:
                    recorded += self._replay(entry, journal.path)
                except SQLAlchemyError as exc:
                    raise _cannot_replay(journal.path, entry, exc) from exc
                done.append(entry.token)
        finally:
            if done or unreadable:
                journal.drop(done, unreadable)
        for line in unreadable:
            log.error(
                "%s: a line that is not a batch's results (a write cut short?), moved to %s: "
                "%.200s. Its deliveries may be sent again when their lease runs out; check "
                "them in `digest status`, then delete that file",
                journal.path,
                journal.rejected,
                line,
            )
        return recorded

    def _replay_progress(self, journal: SendJournal) -> int:
        """The progress files of this machine's dead senders recorded (each under its lock,
        removed once recorded); a database error is raised, the files left for the next
        replay. The last line cut short by the kill is the expected trace of a kill."""
        recorded = 0
        with dead_senders(journal.progress) as traces:
            for trace in traces:
                entry = _progress_entry(trace)
                if entry is not None:
                    sent_at = {a.delivery_id: a.at for a in trace.answers}
                    try:
                        recorded += self._replay(entry, trace.path, sent_at)
                    except SQLAlchemyError as exc:
                        raise _cannot_replay(trace.path, entry, exc) from exc
                _said(trace)
                done(trace)
        return recorded

    def _replay(
        self, entry: JournalEntry, path: Path, sent_at: Mapping[int, datetime] | None = None
    ) -> int:
        """``entry``'s rows written where its claim still holds them (or nobody does);
        ``sent_at``: each row's own time (a progress file's), else the entry's."""
        rows = finished_rows(entry.results, entry.retry_at, self.clock.now(), sent_at=entry.at)
        for row in rows:
            row["token"] = entry.token
            if sent_at and row["sent_at"] is not None:
                row["sent_at"] = sent_at.get(row["row_id"], entry.at)
        if not rows:
            return 0
        with self.engine.begin() as connection:
            twice = _taken_by_another(connection, entry)
            done = int(connection.execute(_REPLAY, rows).rowcount or 0)
            suppressed = bounced_suppressed(connection, entry.bounced, self.clock.now())
        if done and sent_at is not None:
            log.warning(
                "edition %d: recorded %d deliveries the mail server answered before their "
                "sender stopped mid-batch (killed?), from %s: they are not sent again; the "
                "batch's other deliveries go out when their lease runs out",
                entry.edition_id,
                done,
                path,
            )
        elif done:  # (none: its claim recorded it after all, or an earlier replay did)
            log.warning(
                "edition %d: recorded %d deliveries the mail server took at %s, kept in %s "
                "while the database could not record them (%s)",
                entry.edition_id,
                done,
                utc_time(entry.at, seconds=True),
                path,
                entry.reason or "its error was not kept",
            )
        if suppressed:
            log.warning(
                "edition %d: %d subscribers suppressed: the mail server refused their address",
                entry.edition_id,
                suppressed,
            )
        if twice:
            log.warning(
                "edition %d: deliveries %s were taken back by another sender after their "
                "lease ran out, before this record: they went out twice (or are going out "
                "again now). Their second send is recorded by that sender",
                entry.edition_id,
                shown_ids(twice),
            )
        return done


def _taken_by_another(connection: Connection, entry: JournalEntry) -> list[int]:
    """The entry's rows another claim holds or recorded (a sender that took them back
    when their lease ran out): they went out twice. Rows the claim itself recorded after
    all (or an earlier replay did) still carry its token; rows back to pending carry none."""
    token = DELIVERIES.c.claim_token
    found = connection.execute(
        select(DELIVERIES.c.id).where(
            DELIVERIES.c.id.in_([r[0] for r in entry.results]),
            token.is_not(None),
            token != entry.token,
        )
    )
    return sorted(int(i) for (i,) in found)


def _cannot_replay(path: Path, entry: JournalEntry, exc: SQLAlchemyError) -> StoreError:
    taken = utc_time(entry.at, seconds=True)
    return StoreError(
        f"the database cannot record the sends kept in {path} (edition {entry.edition_id}, "
        f"{len(entry.results)} deliveries the mail server took at {taken}): "
        f"{database_words(exc)}",
        "fix the database (a lock another program holds, a full disk, a server that is "
        "down), then send again: nothing is taken back or sent again until they are recorded",
    )


def _progress_entry(trace: Trace) -> JournalEntry | None:
    """A dead sender's progress as the entry its record would have kept (one claim a
    file); None when it holds no answer (killed before the first)."""
    answers = trace.answers
    if not answers:
        return None
    results = [(a.delivery_id, a.status, a.detail, a.message_id) for a in answers]
    last = max(a.at for a in answers)
    reason = "its sender stopped mid-batch"
    return JournalEntry(last, answers[0].edition_id, answers[0].token, results, reason=reason)


def _said(trace: Trace) -> None:
    """What of a progress file is no answer: a last line cut short is the kill's own trace
    (its message may go out again: at most that one); other lines, unreadable, are named."""
    if trace.torn:
        log.info(
            "%s: its last line was cut short by the stop of its sender; that message may "
            "go out again",
            trace.path,
        )
    for line in trace.unreadable:
        log.warning(
            "%s: a line that is not a message's answer, skipped: %.200s. Its delivery goes "
            "out again when its lease runs out",
            trace.path,
            line,
        )
