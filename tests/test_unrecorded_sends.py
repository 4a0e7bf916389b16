"""A batch the mail server took while the database failed to record it is never sent again.

The database fails at the worst moment: the server has accepted the messages, and the write
of their results fails (SQLite locked by another program past the busy timeout, a full
disk, a dropped connection). The rows are still 'sending'; before, once their lease ran out
the next send took them back and mailed everyone in the batch again. Now the record is
retried for ``delivery.record_retry_seconds``, then the results are kept in the journal of
unrecorded sends, `digest status` names them, and the next send records them from there
before it takes back any row.

The database is real SQLite, failed by another connection the moment the server takes the
first message: a trigger that aborts the record (as a full disk would, at once), or an
exclusive lock held past the busy timeout. The server is aiosmtpd, counting what it gets.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.exc import OperationalError

from digest.app import App
from digest.clock import SYSTEM_CLOCK, ManualClock
from digest.config import load_config, warnings_for
from digest.deliver import recording
from digest.deliver.base import Answered
from digest.deliver.batches import Claim, Row
from digest.deliver.dispatch import DispatchSettings, dispatch
from digest.deliver.doubts import UNWEIGHED, refused_before
from digest.deliver.recording import record_batch
from digest.deliver.report import DeliveryReport
from digest.errors import StoreError
from digest.records import OutgoingMessage, SendResult
from digest.render import MessageTemplate
from digest.reports import unrecorded_sends
from digest.states import SendStatus
from digest.store import Edition, JournalEntry, SendJournal, Store, open_engine, upgrade
from digest.store import journal as journal_module
from tests.conftest import FeedServer, free_port, rss, run_cli
from tests.test_scale_out import _recipient, _Sink, _Template, lite  # noqa: F401

READERS = ("ana@example.org", "ben@example.org", "cy@example.org")
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
LEASE = 30.0  # seconds; the record is retried for a third of it at most

# A full disk, played by another connection: every write of a result fails at once.
BREAK = (
    "CREATE TRIGGER disk_full BEFORE UPDATE OF status ON deliveries "
    "WHEN NEW.status != 'sending' BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
)
MEND = "DROP TRIGGER disk_full"


class FailsTheDatabase:
    """An aiosmtpd handler that accepts every message and counts it by recipient; the
    first time it accepts one it runs ``on_first`` (which fails the database)."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.on_first: Callable[[], object] | None = None
        self.port = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.update(str(r) for r in envelope.rcpt_tos)
        run, self.on_first = self.on_first, None
        if run is not None:
            run()
        return "250 2.0.0 Queued"


@pytest.fixture
def mail() -> Iterator[FailsTheDatabase]:
    handler = FailsTheDatabase()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


def _config(
    write_config, feed_server: FeedServer, port: int, retry_seconds: float, journal: str = ""
) -> Path:
    feed = rss([{"title": "Storm closes the coast road", "guid": "s1", "link": "https://n.test/1"}])
    config = write_config(
        [("News", feed_server.add("/news.xml", feed))], transport="smtp", smtp_port=port
    )
    more = f"lease_seconds = {LEASE}\nrecord_retry_seconds = {retry_seconds}\n"
    if journal:
        more += f'unrecorded_file = "{journal}"\n'
    config.write_text(
        config.read_text().replace("retry_base_seconds = 0", "retry_base_seconds = 0\n" + more)
    )
    for address in READERS:
        assert run_cli("--config", str(config), "subscribers", "add", address)[0] == 0
    return config


def _database(config: Path) -> Path:
    return config.parent / "digest.db"


def _other_connection(config: Path, statement: str) -> None:
    """Run one statement on a connection of another program, and close it."""
    connection = sqlite3.connect(_database(config), isolation_level=None)
    try:
        connection.execute(statement)
    finally:
        connection.close()


def _rows(config: Path) -> dict[str, tuple[str, datetime | None]]:
    app = App.open(load_config(config))
    try:
        (edition,) = app.store.editions()
        assert edition.id is not None
        return {s.email: (d.status, d.sent_at) for d, s in app.store.deliveries(edition.id)}
    finally:
        app.close()


def _send(config: Path, at: datetime, *extra: str) -> tuple[int, str, str]:
    return run_cli("--config", str(config), "send", *extra, clock=ManualClock(at))


def test_a_batch_the_server_took_is_recorded_from_the_journal_not_sent_again(
    write_config, feed_server: FeedServer, mail: FailsTheDatabase
) -> None:
    config = _config(write_config, feed_server, mail.port, retry_seconds=1)
    mail.on_first = lambda: _other_connection(config, BREAK)
    received = mail.received

    code, _, err = _send(config, NOW, "--gather")
    assert code != 0
    journal = config.parent / "unrecorded-sends.jsonl"
    assert "the mail server took a batch (3 of 3 messages accepted)" in err
    assert "database or disk is full" in err and str(journal) in err
    assert "the next send on this machine records them from that file" in err
    assert "Workers on other machines cannot read it" in err
    assert received == dict.fromkeys(READERS, 1)
    assert {status for status, _ in _rows(config).values()} == {"sending"}
    (entry,) = [json.loads(line) for line in journal.read_text().splitlines()]
    assert sorted(r[1] for r in entry["results"]) == ["sent"] * 3

    code, out, _ = run_cli("--config", str(config), "status", clock=ManualClock(NOW))
    assert code == 0
    assert "unrecorded: edition 1: 3 deliveries (3 accepted) the mail server took at" in out
    assert str(journal) in out

    # Still broken after the lease ran out: the next send fails before it takes any back.
    after_lease = NOW + timedelta(seconds=2 * LEASE)
    code, _, err = _send(config, after_lease)
    assert code != 0 and "database or disk is full" in err
    assert received == dict.fromkeys(READERS, 1)
    assert journal.read_text().strip()  # kept

    _other_connection(config, MEND)  # the admin frees the disk
    code, out, err = _send(config, after_lease + timedelta(minutes=1))
    assert code == 0, err
    assert received == dict.fromkeys(READERS, 1)  # nobody twice
    rows = _rows(config)
    assert {status for status, _ in rows.values()} == {"sent"}
    assert {sent_at for _, sent_at in rows.values()} == {NOW}  # when the server took them
    assert journal.read_text() == ""
    code, out, _ = run_cli("--config", str(config), "status", clock=ManualClock(NOW))
    assert "unrecorded" not in out


def test_a_record_that_fails_for_a_moment_goes_through_on_a_later_try(
    write_config, feed_server: FeedServer, mail: FailsTheDatabase
) -> None:
    config = _config(write_config, feed_server, mail.port, retry_seconds=8)

    def fail_for_a_second() -> None:
        _other_connection(config, BREAK)
        threading.Timer(1.0, _other_connection, (config, MEND)).start()

    mail.on_first = fail_for_a_second
    received = mail.received
    code, _, err = _send(config, NOW, "--gather")
    assert code == 0, err
    assert "the database failed to record a batch the mail server took" in err
    assert "recorded at try" in err
    assert received == dict.fromkeys(READERS, 1)
    assert {status for status, _ in _rows(config).values()} == {"sent"}
    # Kept at the first failure, taken out once recorded.
    assert (config.parent / "unrecorded-sends.jsonl").read_text() == ""


def test_without_a_journal_the_error_names_the_deliveries_in_flight(
    write_config, feed_server: FeedServer, mail: FailsTheDatabase
) -> None:
    """The journal's folder cannot be made (a file is in its way): the error lists the
    deliveries and says the lease is what is left to hold them."""
    config = _config(
        write_config, feed_server, mail.port, retry_seconds=0, journal="digest.toml/x.jsonl"
    )
    mail.on_first = lambda: _other_connection(config, BREAK)
    code, _, err = _send(config, NOW, "--gather")
    assert code != 0
    assert "could not be written either" in err
    assert "deliveries 1, 2, 3 are still marked in flight" in err
    assert "before their lease runs out" in err


@pytest.mark.slow  # the busy timeout: 10 seconds
def test_a_database_locked_past_the_busy_timeout_keeps_the_batch_in_the_journal(
    write_config, feed_server: FeedServer, mail: FailsTheDatabase
) -> None:
    config = _config(write_config, feed_server, mail.port, retry_seconds=0)
    holder = sqlite3.connect(_database(config), isolation_level=None, check_same_thread=False)
    mail.on_first = lambda: holder.execute("BEGIN EXCLUSIVE")
    received = mail.received
    try:
        code, _, err = _send(config, NOW, "--gather")
    finally:
        holder.execute("ROLLBACK")  # the other program lets go
        holder.close()
    assert code != 0 and "database is locked" in err
    assert received == dict.fromkeys(READERS, 1)
    code, _, err = _send(config, NOW + timedelta(seconds=2 * LEASE))
    assert code == 0, err
    assert received == dict.fromkeys(READERS, 1)
    assert {status for status, _ in _rows(config).values()} == {"sent"}


def test_the_journal_records_rows_taken_back_to_pending_but_not_those_claimed_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Rows another sender took back (pending again) are recorded from the journal; one it
    has claimed again is its own now, and the replay says it may go out twice."""
    engine = open_engine(f"sqlite:///{tmp_path / 'digest.db'}")
    upgrade(engine)
    clock = ManualClock(NOW)
    store = Store(engine, clock, SendJournal(tmp_path / "unrecorded.jsonl"))
    try:
        ids = [store.add_subscriber(address)[0].id for address in READERS]
        edition = store.save_edition(
            Edition(digest_id="daily", slot=NOW, created_at=NOW, subject="s", html="h", text="t")
        )
        assert edition.id is not None and all(ids)
        store.queue_deliveries(edition.id)
        claimed = store.claim_deliveries(edition.id, 3, lease_seconds=LEASE)
        token = claimed[0][0].claim_token
        rows = [row.id for row, _ in claimed]
        store.start_attempt(token)
        assert store.journal is not None
        store.journal.keep(
            JournalEntry(
                NOW,
                edition.id,
                token,
                [(i, "sent", "250 Queued", f"<m{i}@test>") for i in rows],
                reason="database or disk is full",
            )
        )
        # Another sender's journal is not this one: it took the rows back after the lease
        # (recorded here as they would be there, without a replay) and claimed one again.
        clock.advance(timedelta(seconds=2 * LEASE))
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "UPDATE deliveries SET status = 'pending', lease_until = NULL, claim_token = NULL"
            )
        again = store.claim_deliveries(edition.id, 1, lease_seconds=LEASE)
        assert [row.id for row, _ in again] == rows[:1]

        with caplog.at_level(logging.WARNING, logger="digest.store"):
            assert store.reclaim_expired(edition.id) == 0  # replayed first: nothing orphaned
        statuses = {d.id: (d.status, d.message_id) for d, _ in store.deliveries(edition.id)}
        assert statuses == {
            rows[0]: ("sending", None),  # the other sender's now
            rows[1]: ("sent", f"<m{rows[1]}@test>"),
            rows[2]: ("sent", f"<m{rows[2]}@test>"),
        }
        said = [r.getMessage() for r in caplog.records]
        assert any("recorded 2 deliveries the mail server took at" in line for line in said)
        assert any(
            f"deliveries {rows[0]} were taken back by another sender" in line
            and "they went out twice" in line
            for line in said
        )
        assert store.journal.read() == ([], [])
        assert store.reclaim_expired(edition.id) == 0  # and once only
    finally:
        engine.dispose()


def test_a_torn_line_is_kept_and_named_and_the_rest_recorded(tmp_path: Path) -> None:
    journal = SendJournal(tmp_path / "unrecorded.jsonl")
    entry = JournalEntry(NOW, 7, "t0k3n", [(1, "sent", "250 ok", "<a@b>")], {}, "locked")
    journal.keep(entry)
    with journal.path.open("a") as handle:
        handle.write('{"at": "2026-12-07T09:00:00+00:00", "edit\n')
    entries, unreadable = journal.read()
    assert entries == [entry] and len(unreadable) == 1
    assert JournalEntry.from_line(entry.to_line()) == entry


def test_digest_check_warns_of_a_journal_it_cannot_write_and_of_one_that_holds_sends(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    config = _config(write_config, feed_server, 25, 1, journal="digest.toml/x.jsonl")
    said = [str(p) for p in warnings_for(load_config(config))]
    assert any("delivery.unrecorded_file" in w and "cannot be written here" in w for w in said)

    config = _config(write_config, feed_server, 25, 1)
    assert not [w for w in map(str, warnings_for(load_config(config))) if "unrecorded" in w]
    SendJournal(tmp_path / "unrecorded-sends.jsonl").keep(
        JournalEntry(NOW, 1, "t0k3n", [(1, "sent", "250 ok", "<a@b>")])
    )
    said = [str(p) for p in warnings_for(load_config(config))]
    assert any("holds sends the database failed to record" in w for w in said)


def test_status_names_a_journal_only_when_it_holds_a_line(open_app: Callable[..., App]) -> None:
    """`digest status` lists the journal's batches and unreadable lines: none for a journal
    that is absent, empty or blank (it said "0 batches, 0 lines" of a blank one)."""
    app = open_app([("one", "https://one.example.com/feed")])
    journal = app.store.journal
    assert journal is not None
    assert unrecorded_sends(app) is None  # never made
    journal.path.write_text("\n")
    assert unrecorded_sends(app) is None
    journal.keep(JournalEntry(NOW, 1, "t0k3n", [(1, "sent", "250 ok", "<a@b>")], {}, "locked"))
    found = unrecorded_sends(app)
    assert found is not None
    assert [b["edition"] for b in found["batches"]] == [1] and found["unreadable_lines"] == 0


def test_an_entry_kept_after_a_line_cut_short_is_read_whole(tmp_path: Path) -> None:
    """A worker killed mid-write leaves half a line without its end: the next batch's
    entry starts a line of its own, and only the fragment is unreadable."""
    journal = SendJournal(tmp_path / "unrecorded.jsonl")
    cut = JournalEntry(NOW, 1, "tok1", [(1, "sent", "250 ok", "<a@x>")])
    whole = JournalEntry(NOW, 1, "tok2", [(2, "sent", "250 ok", "<b@x>"), (3, "sent", "", None)])
    journal.path.write_text(cut.to_line()[:40])
    journal.keep(whole)
    entries, unreadable = journal.read()
    assert entries == [whole]
    assert unreadable == [cut.to_line()[:40]]


class _LockedStore:
    """A store whose every record fails as a locked SQLite does (at once here), after
    ``busy`` seconds in the database; it counts the tries."""

    clock = SYSTEM_CLOCK

    def __init__(self, busy: float = 0.0, fail: int = 1_000_000) -> None:
        self.busy, self.fail, self.tries = busy, fail, 0

    def finish_deliveries(
        self, results: list[object], token: str, retry_at: object = None, bounced: object = ()
    ) -> int:
        self.tries += 1
        time.sleep(self.busy)
        if self.tries <= self.fail:
            raise OperationalError("UPDATE", {}, Exception("database is locked"))
        return len(results)


def _record(
    store: _LockedStore, journal: SendJournal, patience: float, lease: float = 300.0
) -> Coroutine[object, object, set[int]]:
    claim = Claim(store, "tok", 1, 7, lease)  # type: ignore[arg-type]
    rows = {1: Row(1, 1, "a@example.org", 1, "<m@x>")}
    sent = [SendResult(1, SendStatus.SENT, "250 ok")]
    return record_batch(claim, sent, rows, DeliveryReport(), None, patience, journal)


def test_a_cancel_during_the_retries_leaves_the_batch_in_the_journal(tmp_path: Path) -> None:
    """Ctrl-C (asyncio.Runner cancels the main task) while the record waits between
    tries: the results are in the journal already, not lost with the task."""
    journal = SendJournal(tmp_path / "unrecorded.jsonl")

    async def cancelled() -> None:
        task = asyncio.create_task(_record(_LockedStore(), journal, patience=60.0))
        await asyncio.sleep(1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    entries, unreadable = journal.read()
    assert [(e.token, [r[0] for r in e.results]) for e in entries] == [("tok", [1])]
    assert unreadable == []


def test_a_retry_that_records_the_batch_takes_it_out_of_the_journal(tmp_path: Path) -> None:
    journal = SendJournal(tmp_path / "unrecorded.jsonl")
    other = JournalEntry(NOW, 3, "other", [(9, "sent", "250 ok", "<o@x>")])
    journal.keep(other)
    store = _LockedStore(fail=2)
    assert asyncio.run(_record(store, journal, patience=30.0)) == {1}
    assert store.tries == 3
    assert journal.read() == ([other], [])


def _claimed_edition(store: Store, count: int = 3) -> tuple[int, str, list[int]]:
    """An edition queued for READERS and claimed in one batch: its id, the claim's token,
    and the delivery ids."""
    for address in READERS[:count]:
        store.add_subscriber(address)
    edition = store.save_edition(
        Edition(digest_id="daily", slot=NOW, created_at=NOW, subject="s", html="h", text="t")
    )
    assert edition.id is not None
    store.queue_deliveries(edition.id)
    claimed = store.claim_deliveries(edition.id, count, lease_seconds=LEASE)
    token = claimed[0][0].claim_token
    assert token is not None
    store.start_attempt(token)
    return edition.id, token, [row.id for row, _ in claimed if row.id is not None]


def test_a_hard_bounce_kept_in_the_journal_suppresses_its_reader_when_replayed(
    tmp_path: Path,
) -> None:
    journal = SendJournal(tmp_path / "unrecorded.jsonl")
    # What the record path keeps: the transport said "bounced" for the reader's address,
    # and the run's end, never reached, was to weigh it: kept as doubted, nobody suppressed.
    asyncio.run(_bounced_batch(journal))
    (kept,) = journal.read()[0]
    assert list(kept.bounced) == [] and kept.results[0][1] == "failed"
    assert kept.results[0][2] == "550 5.1.1 no such user" + UNWEIGHED
    # An entry with bounces (a batch whose record suppressed them, as one before the run's
    # end weighed them did) suppresses them when replayed.

    engine = open_engine(f"sqlite:///{tmp_path / 'digest.db'}")
    upgrade(engine)
    store = Store(engine, ManualClock(NOW), SendJournal(tmp_path / "replayed.jsonl"))
    try:
        edition_id, token, (bounced, sent) = _claimed_edition(store, 2)
        assert store.journal is not None
        store.journal.keep(
            JournalEntry(
                NOW,
                edition_id,
                token,
                [(bounced, "failed", "550 5.1.1 no such user", "<a@x>"), (sent, "sent", "", None)],
                bounced=[bounced],
            )
        )
        store.reclaim_expired(edition_id)
        status = {s.email: s.status for s in store.subscribers()}
        assert status == {READERS[0]: "bounced", READERS[1]: "active"}
        (ana,) = [s for s in store.subscribers() if s.email == READERS[0]]
        assert ana.id is not None
        (event, *_) = store.subscriber_history(ana.id)
        assert (event.to_status, event.by) == (
            "bounced",
            "a bounce (the server refused the address)",
        )
    finally:
        engine.dispose()


async def _bounced_batch(journal: SendJournal) -> None:
    claim = Claim(_LockedStore(), "tok", 1, 7, 300.0)  # type: ignore[arg-type]
    rows = {1: Row(1, 1, "gone@example.org", 1, "<m@x>")}
    bounce = [SendResult(1, SendStatus.BOUNCED, "550 5.1.1 no such user")]
    with pytest.raises(StoreError):
        await record_batch(claim, bounce, rows, DeliveryReport(), None, 0.0, journal)


def test_no_try_is_started_that_could_outlast_the_lease(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each try may wait the busy timeout for a lock: once the lease (from its last claim
    or renewal) could run out during one, the tries stop and the run says so, however long
    record_retry_seconds would have let them go on."""
    monkeypatch.setattr(recording, "BUSY_TIMEOUT_SECONDS", 0.3, raising=False)
    monkeypatch.setattr(recording, "LEASE_MARGIN", 0.2, raising=False)
    journal = SendJournal(tmp_path / "unrecorded.jsonl")
    store = _LockedStore(busy=0.3)
    lease = 3.0
    started = time.monotonic()

    async def record() -> None:
        with pytest.raises(StoreError, match="could not record it after"):
            await asyncio.wait_for(_record(store, journal, patience=60.0, lease=lease), 6.0)

    asyncio.run(record())
    assert time.monotonic() - started < lease
    assert store.tries >= 2  # retried while the lease allowed
    assert len(journal.read()[0]) == 1


def test_the_record_and_its_retries_leave_the_event_loop_free(tmp_path: Path) -> None:
    """A try waits on SQLite's lock (the busy timeout) in a thread: the loop goes on
    meanwhile (the lease's renewal, the batch on the wire, a worker's heartbeat)."""
    journal = SendJournal(tmp_path / "unrecorded.jsonl")
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async def main() -> None:
        ticking = asyncio.create_task(ticker())
        with pytest.raises(StoreError):
            await _record(_LockedStore(busy=0.6), journal, patience=1.0)
        ticking.cancel()

    asyncio.run(main())
    assert len(gaps) > 10
    assert max(gaps) < 0.4


def _store(tmp_path: Path) -> Store:
    engine = open_engine(f"sqlite:///{tmp_path / 'digest.db'}")
    upgrade(engine)
    return Store(engine, ManualClock(NOW), SendJournal(tmp_path / "unrecorded.jsonl"))


def _journaled(tmp_path: Path) -> tuple[Store, SendJournal]:
    """``_store`` and the journal it keeps."""
    store = _store(tmp_path)
    assert store.journal is not None
    return store, store.journal


def _sent(edition_id: int, token: str, delivery_id: int) -> JournalEntry:
    return JournalEntry(NOW, edition_id, token, [(delivery_id, "sent", "250 ok", "<m@x>")])


def test_the_replay_records_with_the_journal_unlocked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sender keeping a batch must not wait on a replay's database work."""
    store, journal = _journaled(tmp_path)
    edition_id, token, (row, *_) = _claimed_edition(store, 1)
    journal.keep(_sent(edition_id, token, row))
    free_while_recording: list[bool] = []
    replay = Store._replay

    def watched(self: Store, entry: JournalEntry, path: Path) -> int:
        with path.open("rb") as other:  # another process's handle on the file
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                free_while_recording.append(False)
            else:
                free_while_recording.append(True)
                fcntl.flock(other, fcntl.LOCK_UN)
        return replay(self, entry, path)

    monkeypatch.setattr(Store, "_replay", watched)
    try:
        assert store.replay_journal() == 1
        assert free_while_recording == [True]
        assert journal.read() == ([], [])
    finally:
        store.engine.dispose()


def test_a_replay_that_fails_partway_leaves_only_what_it_did_not_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, journal = _journaled(tmp_path)
    edition_id, token, (first, second) = _claimed_edition(store, 2)
    journal.keep(_sent(edition_id, token, first))
    journal.keep(_sent(edition_id, "second", second))
    replay = Store._replay

    def fails_on_the_second(self: Store, entry: JournalEntry, path: Path) -> int:
        if entry.token == "second":
            raise OperationalError("UPDATE", {}, Exception("database is locked"))
        return replay(self, entry, path)

    monkeypatch.setattr(Store, "_replay", fails_on_the_second)
    try:
        with pytest.raises(StoreError, match="database is locked"):
            store.replay_journal()
        assert [e.token for e in journal.read()[0]] == ["second"]
    finally:
        store.engine.dispose()


def test_an_entry_with_a_status_that_is_none_is_unreadable(tmp_path: Path) -> None:
    journal = SendJournal(tmp_path / "unrecorded.jsonl")
    line = _sent(1, "tok", 1).to_line().replace('"sent"', '"snet"')
    journal.path.write_text(line + "\n")
    assert journal.read() == ([], [line])


def test_a_journal_file_digest_cannot_use_is_an_error_with_a_hint(tmp_path: Path) -> None:
    """A file in the journal's way (here a folder; a root-owned file after `sudo digest
    send` in real life): the send says which file and what to do, not a bare OSError."""
    store = _store(tmp_path)
    assert store.journal is not None
    store.journal.path.mkdir()
    (store.journal.path / "x").write_text("x")
    try:
        with pytest.raises(StoreError) as raised:
            store.reclaim_expired(1)
        assert str(store.journal.path) in raised.value.message
        assert "sudo digest send" in raised.value.hint
        with pytest.raises(StoreError):
            store.journal.keep(_sent(1, "tok", 1))
    finally:
        store.engine.dispose()


def test_unreadable_lines_are_moved_aside_once_and_digest_check_names_them(
    write_config, feed_server: FeedServer
) -> None:
    config = _config(write_config, feed_server, 25, 1)
    app = App.open(load_config(config))
    try:
        journal = app.store.journal
        assert journal is not None
        journal.path.write_text('{"at": "2026-12-07T09:00:00+00:00", "edit\n')
        said: list[str] = []
        handler = logging.Handler(logging.ERROR)
        handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
        logging.getLogger("digest.store").addHandler(handler)  # (the CLI's setup stops propagation)
        try:
            app.store.replay_journal()
            app.store.replay_journal()
        finally:
            logging.getLogger("digest.store").removeHandler(handler)
        assert len([line for line in said if "moved to" in line]) == 1
        assert not journal.waiting()
        assert journal.rejected.read_text().startswith('{"at": "2026-12-07T09:00:00+00:00"')
    finally:
        app.close()
    checked = [str(p) for p in warnings_for(load_config(config))]
    assert any(".rejected holds 1 line(s)" in w for w in checked)


class _DiskFull(Store):
    """A store whose every record of a batch fails as a full disk does."""

    def finish_deliveries(self, *args: Any, **kwargs: Any) -> int:
        raise OperationalError("UPDATE", {}, Exception("database or disk is full"))


def test_the_dispatcher_keeps_a_failed_record_in_the_stores_own_journal(
    lite: tuple[Store, int],  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    """One journal, the store's (built once, by App.open): the dispatcher keeps a batch
    there, where the replay reads it, without being handed one of its own."""
    store, edition_id = lite
    failing = _DiskFull(store.engine, store.clock, SendJournal(tmp_path / "store.jsonl"))
    failing.queue_deliveries(edition_id)
    _dispatch_until_kept(failing, _Sink(), edition_id)
    assert failing.journal is not None
    (entry,) = failing.journal.read()[0]
    assert len(entry.results) == 7


def _dispatch_until_kept(store: Store, sink: _Sink, edition_id: int) -> None:
    """Dispatch the edition in batches of 7, the record tried once: the store's failure to
    record the first batch stops it with a StoreError saying where the batch is kept."""
    template: MessageTemplate = _Template()  # type: ignore[assignment]
    with pytest.raises(StoreError, match="kept in"):
        asyncio.run(
            dispatch(
                store,
                sink,
                lambda s: template,
                _recipient,
                edition_id,
                DispatchSettings(batch_size=7, record_retry_seconds=0),
                queue_all=False,
            )
        )


class _BouncingSink(_Sink):
    """Accepts every message of a batch but its first, whose address the server refuses."""

    async def send_batch(
        self, messages: Sequence[OutgoingMessage], answered: Answered | None = None
    ) -> list[SendResult]:
        first, *rest = await super().send_batch(messages)
        return [SendResult(first.delivery_id, SendStatus.BOUNCED, "550 5.1.1 no such user"), *rest]


# The suppression's write fails, as a full disk would: the bounce's reader cannot be marked.
NO_SUPPRESSION = (
    "CREATE TRIGGER no_suppression BEFORE UPDATE OF status ON subscribers "
    "WHEN NEW.status = 'bounced' BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
)


def test_bounces_whose_suppression_fails_at_the_runs_end_stay_doubted_as_evidence(
    lite: tuple[Store, int],  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    """The run's batches are recorded with their bounces as doubted; the run's end weighs
    them and writes the verdict. When that write fails (tried for record_retry_seconds),
    nothing is lost: the rows stay failed and doubted, nobody suppressed, and they are the
    evidence the next edition reads (a refusal so again a day later is believed)."""
    store, edition_id = lite
    store.queue_deliveries(edition_id)
    with store.engine.begin() as connection:
        connection.exec_driver_sql(NO_SUPPRESSION)
    template: MessageTemplate = _Template()  # type: ignore[assignment]
    report = asyncio.run(
        dispatch(
            store,
            _BouncingSink(),
            lambda s: template,
            _recipient,
            edition_id,
            DispatchSettings(batch_size=7, record_retry_seconds=0),
            queue_all=False,
        )
    )
    counts = store.delivery_counts(edition_id)
    refused = counts["failed"]
    assert refused > 1 and counts["sent"] > refused  # the run took most: believed by counts
    assert (report.bounced, report.doubted) == (0, refused)
    assert all(s.status == "active" for s in store.subscribers())
    failed = [(d, s) for d, s in store.deliveries(edition_id) if d.status == "failed"]
    assert {d.error for d, _ in failed} == {"550 5.1.1 no such user" + UNWEIGHED}

    readers = [s.id for _, s in failed if s.id is not None]
    earlier = store.earlier_attempts(readers, edition_id + 1)
    a_day_later = store.clock.now() + timedelta(days=1)
    assert all(refused_before(earlier[r], a_day_later) is not None for r in readers)


def test_a_journal_locked_too_long_is_an_error_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "LOCK_WAIT", 0.3)
    journal = SendJournal(tmp_path / "unrecorded.jsonl")
    journal.keep(_sent(1, "tok", 1))
    with journal.path.open("rb") as holder:  # a process stuck while holding the lock
        fcntl.flock(holder, fcntl.LOCK_EX)
        started = time.monotonic()
        with pytest.raises(StoreError, match="stayed locked by another process"):
            journal.keep(_sent(1, "tok2", 2))
        assert time.monotonic() - started < 2.0


class _Watched(_LockedStore):
    """Records at once, and notes whether the journal held the batch during the write."""

    def __init__(self, journal: SendJournal) -> None:
        super().__init__(fail=0)
        self.journal = journal
        self.kept_during: list[bool] = []

    def finish_deliveries(
        self, results: list[object], token: str, retry_at: object = None, bounced: object = ()
    ) -> int:
        self.kept_during.append(bool(self.journal.read()[0]))
        return super().finish_deliveries(results, token, retry_at, bounced)


def test_a_lease_too_short_for_a_whole_try_has_the_batch_kept_before_the_first(
    tmp_path: Path,
) -> None:
    """The first try may wait the busy timeout too: when the lease could run out during it,
    the results are in the journal before it starts, and taken out once it goes through."""
    journal = SendJournal(tmp_path / "unrecorded.jsonl")
    store = _Watched(journal)
    assert asyncio.run(_record(store, journal, patience=60.0, lease=1.0)) == {1}
    assert store.kept_during == [True]
    assert journal.read() == ([], [])

    store = _Watched(journal)  # a lease long enough: nothing written on the way
    assert asyncio.run(_record(store, journal, patience=60.0, lease=300.0)) == {1}
    assert store.kept_during == [False]
    assert not journal.waiting()


def test_a_line_that_is_not_utf8_is_unreadable_not_a_crash(tmp_path: Path) -> None:
    journal = SendJournal(tmp_path / "unrecorded.jsonl")
    journal.path.write_bytes(b"\xff\xfe cut\n" + (_sent(1, "tok", 1).to_line() + "\n").encode())
    entries, unreadable = journal.read()
    assert [e.token for e in entries] == ["tok"] and len(unreadable) == 1
    assert journal.snapshot() == (entries, unreadable)


def test_a_batch_another_process_recorded_from_the_journal_is_not_said_taken(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """While this sender retries its record, another digest process of the machine replays
    the journal entry: when the retry then finds the rows recorded under its own claim,
    nothing was taken by another sender and nothing went out twice, so it says nothing."""
    store, journal = _journaled(tmp_path)
    engine = store.engine
    try:
        edition_id, token, ids = _claimed_edition(store)
        results = [(i, "sent", "250 ok", f"<{i}@x>") for i in ids]
        journal.keep(JournalEntry(NOW, edition_id, token, results))
        assert Store(engine, ManualClock(NOW), journal).replay_journal() == 3  # the other one
        claim = Claim(store, token, len(ids), edition_id, LEASE)
        with caplog.at_level(logging.WARNING, logger="digest"):
            claim.finish(list(results), None, journaled=True)  # this sender's retry, now
        assert "taken by another sender" not in caplog.text
        # A claim whose rows are recorded under another claim's token still says so.
        stalled = Claim(store, "a-claim-that-stalled", len(ids), edition_id, LEASE)
        with caplog.at_level(logging.WARNING, logger="digest"):
            stalled.finish(list(results), None)
        assert "3 deliveries of a batch in flight were taken by another sender" in caplog.text
    finally:
        engine.dispose()


def test_a_run_stopped_as_asked_weighs_the_refusals_of_what_it_sent(
    lite: tuple[Store, int],  # noqa: F811 (the fixture)
) -> None:
    """A stop asked for (a worker's SIGTERM) ends the run after the batch on the wire: the
    run still ends, so it weighs its refusals on what it sent (one refused of seven: the
    reader suppressed); the rows it never sent wait for the next run."""
    store, edition_id = lite
    store.queue_deliveries(edition_id)
    template: MessageTemplate = _Template()  # type: ignore[assignment]
    asked: list[bool] = []

    def stop() -> bool:
        asked.append(True)
        return len(asked) > 1  # after the first batch

    report = asyncio.run(
        dispatch(
            store,
            _BouncingSink(),
            lambda s: template,
            _recipient,
            edition_id,
            DispatchSettings(batch_size=7),
            queue_all=False,
            stop=stop,
        )
    )
    counts = store.delivery_counts(edition_id)
    assert (counts["sent"], counts["failed"]) == (6, 1) and counts["pending"] > 0
    assert (report.bounced, report.doubted) == (1, 0)
    (gone,) = [s for d, s in store.deliveries(edition_id) if d.status == "failed"]
    assert {s.email for s in store.subscribers() if s.status == "bounced"} == {gone.email}
    (row,) = [d for d, _ in store.deliveries(edition_id) if d.status == "failed"]
    assert row.error == "550 5.1.1 no such user"  # the doubt it was recorded with is gone
