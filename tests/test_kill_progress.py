"""A sender killed mid-batch (kill -9, the OOM killer) does not mail again the readers the
server had already accepted: each answer is kept in the batch's progress file as it comes,
and the next send records a dead sender's progress before it takes any row back.

The sender is a real `digest send` subprocess against a real aiosmtpd server that counts
what it gets per recipient; the database is real SQLite, or PostgreSQL under pgtest.sh.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from digest.app import App
from digest.clock import ManualClock
from digest.config import load_config
from digest.deliver.base import Answered
from digest.deliver.dispatch import DispatchSettings, dispatch
from digest.deliver.maildir import MaildirSender
from digest.records import OutgoingMessage, SendResult
from digest.render import MessageTemplate
from digest.states import SendStatus
from digest.store import Edition, SendJournal, Store, open_engine, upgrade
from digest.store.journal_progress import ProgressFile
from tests.conftest import ROOT, FeedServer, free_port, rss
from tests.store_queries import add_readers, reader_address
from tests.test_scale_out import _recipient, _Template

NOW = datetime(2026, 12, 8, 7, 0, tzinfo=UTC)
LEASE = 30.0


class StallsAfter:
    """An aiosmtpd handler that accepts ``take`` messages, counting each per recipient, then
    holds every DATA after them unanswered (and uncounted: the sender dies before any
    reply) until ``stalling`` is switched off; after that it accepts and counts again."""

    def __init__(self, take: int) -> None:
        self.take = take
        self.received: Counter[str] = Counter()
        self.stalling = True
        self.held = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.stalling and sum(self.received.values()) >= self.take:
            self.held += 1
            while self.stalling:
                await asyncio.sleep(0.01)
            return "421 4.3.0 held until its sender was gone"
        self.received.update(str(r) for r in envelope.rcpt_tos)
        return "250 2.0.0 Queued"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None: the config's SQLite beside it; else a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        yield None
        return
    yield request.getfixturevalue("postgres_database")


def _config(write_config, feed_server: FeedServer, port: int, database: str | None) -> Path:
    url = feed_server.add(
        "/f.xml", rss([{"title": "Harbour strike ends", "guid": "1", "link": "https://w.test/1"}])
    )
    config = write_config([("Wire", url)], transport="smtp", smtp_port=port)
    text = config.read_text().replace(
        'transport = "smtp"', 'transport = "smtp"\nbatch_size = 20\nlease_seconds = 1.0'
    )
    if database is not None:
        text = text.replace('database_url = "sqlite:///digest.db"', f'database_url = "{database}"')
    config.write_text(text)
    return config


def _progress_lines(folder: Path) -> int:
    """Lines in the progress files of ``folder`` (whole lines: each ends in a newline)."""
    if not folder.is_dir():
        return 0
    return sum(p.read_bytes().count(b"\n") for p in folder.iterdir())


def _kept(url: str, folder: Path) -> int:
    """Messages recorded sent in the database, and kept in progress files."""
    engine = open_engine(url)
    try:
        with engine.connect() as connection:
            sent = connection.exec_driver_sql(
                "SELECT count(*) FROM deliveries WHERE status = 'sent'"
            ).scalar_one()
    finally:
        engine.dispose()
    return int(sent) + _progress_lines(folder)


@pytest.mark.slow  # two `digest send` processes
def test_a_sender_killed_mid_batch_sends_again_only_what_the_server_did_not_take(
    write_config, feed_server: FeedServer, database: str | None
) -> None:
    """Killed with 50 of 200 messages accepted (the third batch of 20 half out, the batch
    before it maybe unrecorded): the next send records those the dead sender had not
    from its progress files and sends the other 150, each reader's edition once, not one
    duplicate."""
    readers, take = 200, 50
    handler = StallsAfter(take)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        config = _config(write_config, feed_server, controller.port, database)
        app = App.open(load_config(config))
        try:
            add_readers(app.engine, readers)
        finally:
            app.close()
        folder = config.parent / "unrecorded-sends.jsonl.progress"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "digest", "--config", str(config), "send", "--gather"]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + 60
        url = database or f"sqlite:///{config.parent / 'digest.db'}"
        # The sessions are held on their next message, and every message the server took is
        # either recorded (the batches before) or kept in a progress file.
        while not (handler.held and _kept(url, folder) == take):
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, (
                f"the sender never reached the planned kill: {handler.held} held, "
                f"{sum(handler.received.values())} taken, {_kept(url, folder)} kept"
            )
            time.sleep(0.01)
        assert sum(handler.received.values()) == take
        process.send_signal(signal.SIGKILL)
        process.wait()
        kept = _progress_lines(folder)
        assert 0 < kept < take and _kept(url, folder) == take  # the dead sender's trace
        handler.stalling = False
        time.sleep(1.2)  # the dead sender's lease runs out

        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        said = done.stdout + done.stderr
        assert "before their sender stopped mid-batch" in said
        assert "not sent again" in said
        counts = [handler.received[reader_address(i)] for i in range(readers)]
        assert counts == [1] * readers, Counter(counts)
        assert list(folder.iterdir()) == []  # every batch recorded: no progress left
        assert not (config.parent / "unrecorded-sends.jsonl.rejected").exists()
        app = App.open(load_config(config))
        try:
            (edition,) = app.store.editions()
            assert edition.id is not None
            assert app.store.delivery_counts(edition.id) == {"sent": readers}
        finally:
            app.close()
    finally:
        handler.stalling = False
        controller.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store with a journal beside it (SQLite, or PostgreSQL under pgtest.sh)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'digest.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
    engine = open_engine(url)
    upgrade(engine)
    try:
        yield Store(engine, ManualClock(NOW), SendJournal(tmp_path / "unrecorded.jsonl"))
    finally:
        engine.dispose()


def _claimed(store: Store, count: int = 3) -> tuple[int, str, list[int]]:
    """An edition queued to ``count`` readers, claimed in one batch gone out: its id, the
    claim's token and the delivery ids."""
    add_readers(store.engine, count)
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


def _progress(store: Store, edition_id: int, token: str) -> ProgressFile:
    assert store.journal is not None
    progress = ProgressFile.open(store.journal.progress, token, edition_id, store.clock)
    assert progress is not None
    return progress


def _answer(progress: ProgressFile, delivery_id: int, status: str = SendStatus.SENT) -> None:
    message = OutgoingMessage(delivery_id, "news@x.test", "r@x.test", f"<m{delivery_id}@x>", b"")
    progress.answered(message, SendResult(delivery_id, status, f"250 queued as {delivery_id}"))


def _rows(store: Store, edition_id: int) -> dict[int, tuple[str, str | None, datetime | None]]:
    return {d.id or 0: (d.status, d.message_id, d.sent_at) for d, _ in store.deliveries(edition_id)}


def test_a_dead_senders_progress_is_recorded_and_a_torn_last_line_is_no_alarm(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Two answers kept, then a line cut short by the kill: the two rows are recorded as
    the batch's record would have (each its own time), the third goes back to pending
    when the lease runs out; the cut line is said as the kill's trace, not as damage."""
    edition_id, token, (a, b, c) = _claimed(store)
    progress = _progress(store, edition_id, token)
    _answer(progress, a)
    assert isinstance(store.clock, ManualClock)
    store.clock.advance(timedelta(seconds=2))
    _answer(progress, b)
    _answer(progress, c, SendStatus.DEFERRED)  # not final: the next run tries it again
    with progress.path.open("a") as file:
        file.write('{"edition": 1, "token": "' + token[:7])  # the write the kill cut short
    progress.close()  # the sender dies: the kernel closes its file, and its lock goes

    store.clock.advance(timedelta(seconds=2 * LEASE))
    with caplog.at_level(logging.INFO, logger="digest.store"):
        assert store.reclaim_expired(edition_id) == 1  # replayed first: only c is taken back
    assert _rows(store, edition_id) == {
        a: ("sent", f"<m{a}@x>", NOW),
        b: ("sent", f"<m{b}@x>", NOW + timedelta(seconds=2)),
        c: ("pending", None, None),
    }
    alarms = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert alarms == []
    said = [r.getMessage() for r in caplog.records]
    assert any("recorded 2 deliveries the mail server answered" in line for line in said)
    assert any("last line was cut short by the stop of its sender" in line for line in said)
    assert not any("not a message's answer" in line for line in said)
    assert store.journal is not None
    assert list(store.journal.progress.iterdir()) == []
    assert not store.journal.rejected.exists()
    assert store.reclaim_expired(edition_id) == 0  # and once only


def test_a_live_senders_progress_is_left_alone(store: Store) -> None:
    """A progress file its sender still holds (locked) is not recorded, even when its
    lease has run out (a stalled sender that may still record it): once the sender is
    gone, it is."""
    edition_id, token, (a, b, c) = _claimed(store)
    progress = _progress(store, edition_id, token)
    _answer(progress, a)
    _answer(progress, b, SendStatus.FAILED)  # refused for good: not sent again either
    assert store.replay_journal() == 0
    assert {row[0] for row in _rows(store, edition_id).values()} == {"sending"}
    assert progress.path.exists()
    progress.close()
    assert store.replay_journal() == 2
    rows = _rows(store, edition_id)
    assert (rows[a][0], rows[b][0], rows[c][0]) == ("sent", "failed", "sending")


def test_progress_of_rows_another_sender_took_back_names_them_and_keeps_its_record(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Another machine's sender (whose journal this is not) took the rows back when the
    lease ran out and sent one again before this machine's replay: that row keeps its
    record, and the replay names it as gone twice; the rows back to pending (not claimed
    again yet) are recorded from the progress."""
    edition_id, token, (a, b, c) = _claimed(store)
    progress = _progress(store, edition_id, token)
    for row in (a, b, c):
        _answer(progress, row)
    progress.close()
    assert isinstance(store.clock, ManualClock)
    store.clock.advance(timedelta(seconds=2 * LEASE))
    elsewhere = Store(store.engine, store.clock)  # no journal of its own here
    assert elsewhere.reclaim_expired(edition_id) == 3
    again = elsewhere.claim_deliveries(edition_id, 1, lease_seconds=LEASE)
    other = again[0][0].claim_token
    assert other is not None and [row.id for row, _ in again] == [a]
    elsewhere.start_attempt(other)
    elsewhere.finish_deliveries([(a, "sent", "250 again", "<again@x>")], other)

    with caplog.at_level(logging.WARNING, logger="digest.store"):
        assert store.reclaim_expired(edition_id) == 0
    rows = _rows(store, edition_id)
    assert rows[a][:2] == ("sent", "<again@x>")  # the other sender's record stays
    assert rows[b][:2] == ("sent", f"<m{b}@x>")
    assert rows[c][:2] == ("sent", f"<m{c}@x>")
    said = [r.getMessage() for r in caplog.records]
    assert any(
        f"deliveries {a} were taken back by another sender" in line and "twice" in line
        for line in said
    )
    assert store.journal is not None
    assert list(store.journal.progress.iterdir()) == []


class Watched:
    """A real Maildir transport, and after each batch the lines its progress files hold."""

    name = "maildir"
    wants_fields = False

    def __init__(self, inner: MaildirSender, folder: Path) -> None:
        self.inner, self.folder = inner, folder
        self.kept: list[tuple[int, int]] = []  # (messages of the batch, lines kept by then)

    async def send_batch(
        self, messages: Sequence[OutgoingMessage], answered: Answered | None = None
    ) -> list[SendResult]:
        results = await self.inner.send_batch(messages, answered)
        self.kept.append((len(messages), _progress_lines(self.folder)))
        return results

    async def aclose(self) -> None:
        await self.inner.aclose()


def _edition(store: Store, slot: datetime) -> int:
    edition = store.save_edition(
        Edition(digest_id="daily", slot=slot, created_at=NOW, subject="s", html="h", text="t")
    )
    assert edition.id is not None
    return edition.id


def test_a_recorded_batch_leaves_no_progress_and_no_journal_keeps_none(
    store: Store, tmp_path: Path
) -> None:
    """A Maildir send keeps each batch's progress while it is out and removes it with the
    record: nothing is left once the edition is sent. A store without a journal (a tool
    that never sends) keeps no progress: a sender killed then sends its batch again."""
    add_readers(store.engine, 25)
    template: MessageTemplate = _Template()  # type: ignore[assignment]
    assert store.journal is not None
    folder = store.journal.progress
    sender = Watched(MaildirSender(tmp_path / "mail"), folder)
    settings = DispatchSettings(batch_size=10)
    edition_id = _edition(store, NOW)
    report = asyncio.run(
        dispatch(store, sender, lambda s: template, _recipient, edition_id, settings)
    )
    assert report.counts["sent"] == 25
    assert [n for n, _ in sender.kept] == [10, 10, 5]
    assert all(lines >= n for n, lines in sender.kept)  # each answer kept as it came
    assert list(folder.iterdir()) == []

    bare = Store(store.engine, store.clock)
    second = _edition(store, NOW + timedelta(days=1))
    sender.kept.clear()
    asyncio.run(dispatch(bare, sender, lambda s: template, _recipient, second, settings))
    assert bare.delivery_counts(second) == {"sent": 25}
    assert [lines for _, lines in sender.kept] == [0, 0, 0]
