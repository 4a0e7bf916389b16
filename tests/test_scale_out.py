"""Many senders on one outbox: claims that never share a row and never stop early, rows of
a stopped sender named until they come back, and the counts every command words alike.

The PostgreSQL cases run on the server scripts/test starts (skipped without one); the
others run on SQLite, which keeps one writer.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from digest.deliver.base import Answered
from digest.deliver.dispatch import DeliveryReport, DispatchSettings, count_words, dispatch
from digest.records import OutgoingMessage, Reader, Recipient, SendResult
from digest.render import MessageTemplate
from digest.store import Edition, Store, utcnow
from tests.store_queries import store_with_an_edition


@pytest.fixture
def pg(postgres_database: str) -> Iterator[tuple[Store, int]]:
    with store_with_an_edition(postgres_database, 1000) as made:
        yield made


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[tuple[Store, int]]:
    with store_with_an_edition(f"sqlite:///{tmp_path / 'digest.db'}", 30) as made:
        yield made


def test_queueing_on_postgresql_counts_the_rows_it_queued(pg: tuple[Store, int]) -> None:
    store, edition_id = pg
    assert store.queue_deliveries(edition_id) == 1000  # was -1: the driver's rowcount
    assert store.queue_deliveries(edition_id) == 0


def test_concurrent_claims_never_share_a_row_and_each_claimant_gets_work(
    pg: tuple[Store, int],
) -> None:
    """Four claimants started together drain 1,000 rows in batches of 20: every row is
    claimed exactly once, and none of them stops early on an empty claim.

    Each claimant spends a moment on its batch, as a sender does on the wire: without it
    the share each thread gets measures the interpreter's thread switching, not the claim
    (one run of the bare loop gave 67 rows to one thread and 540 to another)."""
    store, edition_id = pg
    store.queue_deliveries(edition_id)
    start = threading.Barrier(4)
    taken: list[list[int]] = [[] for _ in range(4)]
    pending_when_stopped: list[bool] = [True] * 4

    def claimant(me: int) -> None:
        start.wait()
        while batch := store.claim_deliveries(edition_id, 20, lease_seconds=60):
            taken[me].extend(d.id for d, _ in batch if d.id is not None)
            time.sleep(0.02)
        pending_when_stopped[me] = store.has_pending(edition_id)

    threads = [threading.Thread(target=claimant, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    every = [i for mine in taken for i in mine]
    assert len(every) == len(set(every)) == 1000
    assert pending_when_stopped == [False] * 4
    assert all(len(mine) >= 100 for mine in taken), [len(mine) for mine in taken]


def test_the_claim_uses_the_partial_index_of_claimable_rows(pg: tuple[Store, int]) -> None:
    """The pick reads the small index of rows still to send, not the whole table."""
    from sqlalchemy import text

    store, edition_id = pg
    store.queue_deliveries(edition_id)
    with store.engine.connect() as connection:
        plan = "\n".join(
            row[0]
            for row in connection.execute(
                text(
                    "EXPLAIN SELECT d.id FROM deliveries d JOIN subscribers s ON "
                    "s.id = d.subscriber_id WHERE d.edition_id = :e AND d.status = 'pending' "
                    "AND s.status = 'active' ORDER BY d.id LIMIT 50 FOR UPDATE OF d SKIP LOCKED"
                ),
                {"e": edition_id},
            )
        )
    assert "ix_deliveries_claimable" in plan, plan


def test_counting_a_batch_s_attempt_writes_each_row_on_its_own_page(
    pg: tuple[Store, int],
) -> None:
    """Claimed rows keep room on their page (fillfactor, migration 0023), so the attempt,
    which changes no indexed column, is written in place (a HOT update) and not as a new
    row version on another page with an entry in every index."""
    from sqlalchemy import text

    from digest.store.tables import DELIVERIES_FILLFACTOR

    store, edition_id = pg
    store.queue_deliveries(edition_id)
    claimed = store.claim_deliveries(edition_id, 500, lease_seconds=600)
    token = claimed[0][0].claim_token
    assert token is not None

    def pages() -> dict[int, int]:
        with store.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT id, (ctid::text::point)[0]::int FROM deliveries WHERE claim_token = :t"
                ),
                {"t": token},
            )
            return dict(rows.all())

    before = pages()
    assert len(store.start_attempt(token)) == 500
    after = pages()
    moved = sum(1 for i, page in after.items() if before[i] != page)
    # ~500 at fillfactor 100, ~200 at 70, ~20 at 50
    assert moved <= 50, f"{moved} of 500 rows went to another page"
    with store.engine.connect() as connection:
        options = connection.execute(
            text("SELECT reloptions FROM pg_class WHERE relname = 'deliveries'")
        ).scalar()
    assert f"fillfactor={DELIVERIES_FILLFACTOR}" in (options or [])


class _Sink:
    """A transport that accepts every message and remembers the rows it sent."""

    wants_fields = False
    name = "sink"

    def __init__(self) -> None:
        self.sent: list[int] = []

    async def send_batch(
        self, messages: Sequence[OutgoingMessage], answered: Answered | None = None
    ) -> list[SendResult]:
        self.sent.extend(m.delivery_id for m in messages)
        return [SendResult(m.delivery_id, "sent", "250 ok") for m in messages]

    async def aclose(self) -> None:
        pass


class _Template:
    """Enough of a MessageTemplate for the dispatcher: fixed bytes per recipient."""

    sender = "news@example.org"
    dot_safe = True  # its bytes start no line with a dot

    def personalise(self, recipient: Recipient, delivery_id: int) -> tuple[str, bytes]:
        return f"<{delivery_id}@test>", b"Subject: s\r\n\r\nbody\r\n"


def _recipient(s: Reader) -> Recipient:
    return Recipient(s.id or 0, s.email, None, "https://u.test", "mailto:u@x.test", "https://p")


def _send(
    store: Store,
    edition_id: int,
    sink: _Sink,
    queue: bool = True,
    *,
    batch_size: int = 7,
    template_for: Callable[[Reader], MessageTemplate] | None = None,
    stop: Callable[[], bool] | None = None,
) -> DeliveryReport:
    """Dispatch the edition through ``sink`` (every reader's message a ``_Template``'s
    unless ``template_for`` is given), in batches of ``batch_size``."""
    template: MessageTemplate = _Template()  # type: ignore[assignment]
    return asyncio.run(
        dispatch(
            store,
            sink,
            template_for or (lambda s: template),
            _recipient,
            edition_id,
            DispatchSettings(batch_size=batch_size),
            queue_all=queue,
            stop=stop,
        )
    )


def test_rows_held_by_a_stopped_sender_are_named_with_when_they_come_back(
    lite: tuple[Store, int],
) -> None:
    """A sender that died holding rows: the next send sends the rest, says how many are
    in flight and when their lease runs out, then sends them once it has."""
    store, edition_id = lite
    store.queue_deliveries(edition_id)
    held = store.claim_deliveries(edition_id, 5, lease_seconds=60)  # its sender dies
    sink = _Sink()
    report = _send(store, edition_id, sink, queue=False)
    assert report.counts == {"sent": 25}
    assert report.in_flight == 5
    assert report.back_at is not None
    assert timedelta(seconds=55) < report.back_at - utcnow() <= timedelta(seconds=60)
    assert "5 in flight, held by another sender" in report.in_flight_note()
    assert f"{report.back_at:%H:%M:%S} UTC" in report.in_flight_note()

    token = held[0][0].claim_token
    assert token is not None  # the lease runs out: the rows come back and go out once
    store.renew_lease(token, -1)
    again = _send(store, edition_id, sink, queue=False)
    assert again.counts == {"sent": 5} and again.in_flight == 0
    assert sorted(sink.sent) == sorted(set(sink.sent)) and len(sink.sent) == 30


def test_send_and_status_word_the_same_state_alike() -> None:
    report = DeliveryReport()
    report.counts.update({"sent": 3, "failed": 2, "deferred": 1})
    report.bounced = 2
    assert report.counts_line() == "3 sent, 1 deferred, 2 failed (2 bounced: address suppressed)"
    assert count_words({"failed": 2, "sent": 3, "deferred": 1}) == "3 sent, 1 deferred, 2 failed"


def test_status_lists_the_queue_and_the_workers(write_config, feed_server) -> None:
    from digest.app import App
    from digest.config import load_config
    from digest.store.tables import Worker
    from tests.conftest import run_cli

    config = write_config([("Wire", feed_server.add("/f.xml", "<rss/>"))])
    app = App.open(load_config(config))
    try:
        store = app.store
        for i in range(3):
            store.add_subscriber(f"r{i}@example.org")
        now = utcnow()
        edition = store.save_edition(
            Edition(digest_id="daily", slot=now, created_at=now, subject="s", html="h", text="t")
        )
        assert edition.id is not None
        store.queue_deliveries(edition.id)
        store.claim_deliveries(edition.id, 1, lease_seconds=600)
        for pid, seen in ((101, now), (102, now - timedelta(minutes=10))):
            store.register_worker(
                Worker(id=f"h:{pid}", host="mail-1", pid=pid, started_at=now, last_seen=seen)
            )
        store.beat("h:101", sent=40, rate=12.5, state="sending")
    finally:
        app.close()
    code, out, err = run_cli("--config", str(config), "status")
    assert code == 0, err
    assert "queue: 2 pending (oldest waiting" in out
    assert "1 in flight (if their sender stopped, they are pending again by" in out
    lines = [line for line in out.splitlines() if "mail-1" in line]
    assert len(lines) == 2
    assert "101" in lines[0] and "sending" in lines[0] and "12.5" in lines[0]
    assert "102" in lines[1] and "STOPPED?" in lines[1]


def test_a_scheduler_that_does_not_send_queues_for_the_workers(
    write_config, feed_server, tmp_path: Path
) -> None:
    """`[schedule] send = false`: the run builds and queues the edition and mails nobody;
    a worker's pass sends it."""
    from digest.app import App
    from digest.config import load_config
    from digest.pipeline import run_digest
    from digest.worker import run_worker
    from tests.conftest import rss

    url = feed_server.add("/f.xml", rss([{"title": "A", "guid": "1", "link": "https://w/1"}]))
    config = write_config([("Wire", url)])
    config.write_text(config.read_text() + "\n[schedule]\nsend = false\n")
    app = App.open(load_config(config))
    try:
        for i in range(3):
            app.store.add_subscriber(f"r{i}@example.org")
        report = asyncio.run(run_digest(app, send=app.config.schedule.send))
        assert report.delivery is not None and report.delivery.for_workers
        assert report.delivery.counts_line() == (
            "3 queued for the workers (`digest worker` sends them)"
        )
        assert not (tmp_path / "mail" / "new").exists() or not any(
            (tmp_path / "mail" / "new").iterdir()
        )
        stats = asyncio.run(run_worker(app, threading.Event(), rounds=1))
        assert stats.sent == 3
        assert len(list((tmp_path / "mail" / "new").iterdir())) == 3
    finally:
        app.close()


class _SlowSink(_Sink):
    """Looks at the outbox while each batch is on the wire; can ask the run to stop."""

    def __init__(self, store: Store, edition_id: int, stop_after: int = 0) -> None:
        super().__init__()
        self.store, self.edition_id, self.stop_after = store, edition_id, stop_after
        self.in_flight_seen: list[int] = []
        self.batches = 0

    async def send_batch(
        self, messages: Sequence[OutgoingMessage], answered: Answered | None = None
    ) -> list[SendResult]:
        await asyncio.sleep(0.2)  # on the wire: the dispatcher builds the next batch now
        self.in_flight_seen.append(self.store.delivery_counts(self.edition_id).get("sending", 0))
        self.batches += 1
        return await super().send_batch(messages)

    def stopping(self) -> bool:
        return bool(self.stop_after) and self.batches >= self.stop_after


def test_the_next_batch_is_claimed_while_one_is_on_the_wire(lite: tuple[Store, int]) -> None:
    store, edition_id = lite
    store.queue_deliveries(edition_id)
    sink = _SlowSink(store, edition_id)
    report = _send(store, edition_id, sink, queue=False)
    assert report.counts == {"sent": 30}
    # Batches of 7: from the second on, while each is out the next 7 are claimed too.
    assert sink.in_flight_seen == [7, 14, 14, 9, 2], sink.in_flight_seen  # 30 rows


class _AheadSink(_Sink):
    """Each batch 0.9 s on the wire; how many rows are held ahead (claimed, neither in this
    batch nor in the one before, whose record may still be under way) 0.3 s into it and at
    its end."""

    def __init__(self, store: Store, edition_id: int) -> None:
        super().__init__()
        self.store, self.edition_id = store, edition_id
        self.seen: list[tuple[int, int]] = []
        self.before: set[int] = set()

    def _ahead(self, on_wire: set[int]) -> int:
        from sqlalchemy import text

        with self.store.engine.connect() as connection:
            sending = connection.execute(
                text("SELECT id FROM deliveries WHERE edition_id = :e AND status = 'sending'"),
                {"e": self.edition_id},
            )
            return len({i for (i,) in sending} - on_wire - self.before)

    async def send_batch(
        self, messages: Sequence[OutgoingMessage], answered: Answered | None = None
    ) -> list[SendResult]:
        on_wire = {m.delivery_id for m in messages}
        await asyncio.sleep(0.3)
        early = self._ahead(on_wire)
        await asyncio.sleep(0.6)
        self.seen.append((early, self._ahead(on_wire)))
        self.before = on_wire
        return await super().send_batch(messages)


def _ahead_seen(store: Store, edition_id: int) -> list[tuple[int, int]]:
    """30 rows in batches of 10 through an _AheadSink: the rows it saw held ahead."""
    store.queue_deliveries(edition_id)
    sink = _AheadSink(store, edition_id)
    report = _send(store, edition_id, sink, queue=False, batch_size=10)
    assert report.counts == {"sent": 30}
    return sink.seen


def test_after_a_quick_batch_the_next_is_claimed_as_a_batch_goes_out(
    lite: tuple[Store, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches quicker than AHEAD_AT_ONCE_UNDER (here 5 s): the next is claimed as soon as
    a batch goes out, so it is built when the sessions want it. The run's first batch
    claims none ahead: the server's speed is not known yet."""
    import sys

    monkeypatch.setattr(sys.modules["digest.deliver.dispatch"], "AHEAD_AT_ONCE_UNDER", 5.0)
    assert _ahead_seen(*lite) == [(0, 0), (10, 10), (0, 0)]


def test_after_a_slow_batch_the_next_is_claimed_only_near_the_end(
    lite: tuple[Store, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches slower than AHEAD_AT_ONCE_UNDER (here 0.5 s): the next is claimed at
    AHEAD_AT (here 0.5) of the last one's time on the wire, not as it goes out: a slow
    server's batch held ahead all along is work the other workers cannot take."""
    import sys

    dispatching = sys.modules["digest.deliver.dispatch"]
    monkeypatch.setattr(dispatching, "AHEAD_AT_ONCE_UNDER", 0.5)
    monkeypatch.setattr(dispatching, "AHEAD_AT", 0.5)
    assert _ahead_seen(*lite) == [(0, 0), (0, 10), (0, 0)]


def test_a_batch_whose_build_fails_gives_its_rows_back_at_once(
    lite: tuple[Store, int],
) -> None:
    """Nothing of a batch whose messages could not be built went out: its rows are pending
    again at once, not held under a lease its renewal would keep alive."""
    store, edition_id = lite
    store.queue_deliveries(edition_id)
    template: MessageTemplate = _Template()  # type: ignore[assignment]
    built: list[int] = []

    def template_for(reader: Reader) -> MessageTemplate:
        built.append(reader.id or 0)
        if len(built) == 3:
            raise RuntimeError("a template that cannot be made")
        return template

    with pytest.raises(RuntimeError):
        _send(store, edition_id, _Sink(), queue=False, template_for=template_for)
    assert store.delivery_counts(edition_id) == {"pending": 30}


def test_a_stop_releases_the_batch_claimed_ahead_unsent(lite: tuple[Store, int]) -> None:
    store, edition_id = lite
    store.queue_deliveries(edition_id)
    sink = _SlowSink(store, edition_id, stop_after=1)
    report = _send(store, edition_id, sink, queue=False, stop=sink.stopping)
    assert report.counts == {"sent": 7}
    assert store.delivery_counts(edition_id) == {"sent": 7, "pending": 23}


def test_retry_due_names_rows_in_flight_and_when_they_come_back(write_config, feed_server) -> None:
    from digest.app import App
    from digest.config import load_config
    from tests.conftest import run_cli

    config = write_config([("Wire", feed_server.add("/f.xml", "<rss/>"))])
    app = App.open(load_config(config))
    try:
        app.store.add_subscriber("r@example.org")
        now = utcnow()
        edition = app.store.save_edition(
            Edition(digest_id="daily", slot=now, created_at=now, subject="s", html="h", text="t")
        )
        assert edition.id is not None
        app.store.queue_deliveries(edition.id)
        app.store.claim_deliveries(edition.id, 1, lease_seconds=600)  # its sender dies
        back = app.store.queue_summary().back_at
    finally:
        app.close()
    assert back is not None
    code, out, err = run_cli("--config", str(config), "retry", "--due")
    assert code == 0, err
    said = "1 in flight under a sender's lease; if it stopped, they are pending again by "
    assert f"{said}{back:%Y-%m-%d %H:%M:%S} UTC" in out


class _FreezingSink(_Sink):
    """A sender that stalls like a process stopped dead (kill -9, SIGSTOP): batch 1 takes
    0.2 s; batch 2 is on the wire long enough for the next batch to be claimed ahead, then
    the whole event loop freezes (no lease renewal, no recording) until ``thaw``."""

    def __init__(self, store: Store, edition_id: int) -> None:
        super().__init__()
        self.store, self.edition_id = store, edition_id
        self.frozen, self.thaw = threading.Event(), threading.Event()
        self.held_when_frozen = 0

    async def send_batch(
        self, messages: Sequence[OutgoingMessage], answered: Answered | None = None
    ) -> list[SendResult]:
        if len(self.sent) == 7:  # batch 2: on the wire, the next claimed ahead meanwhile
            for _ in range(200):
                await asyncio.sleep(0.05)
                self.held_when_frozen = self.store.delivery_counts(self.edition_id)["sending"]
                if self.held_when_frozen >= 14:
                    break
            self.frozen.set()
            self.thaw.wait(60)  # blocks the loop: the process is gone, as far as others see
        else:
            await asyncio.sleep(0.2)
        return await super().send_batch(messages)


def test_a_batch_claimed_ahead_by_a_dead_sender_counts_no_attempt_and_never_goes_out_twice(
    lite: tuple[Store, int],
) -> None:
    """A sender stops dead with batch 2 on the wire and batch 3 claimed ahead. After the
    lease runs out another sender sends both: the rows of batch 2 show two attempts (they
    may have gone out), every other row one. When the stalled sender wakes, it records
    nothing of theirs and does not send the batch it had claimed ahead."""
    from sqlalchemy import text

    store, edition_id = lite
    store.queue_deliveries(edition_id)
    stalled = _FreezingSink(store, edition_id)
    run = threading.Thread(target=_send, args=(store, edition_id, stalled, False))
    run.start()
    try:
        assert stalled.frozen.wait(30)
        assert stalled.held_when_frozen == 14  # batch 2 on the wire, batch 3 ahead
        with store.engine.begin() as connection:  # the dead sender's leases run out
            connection.execute(
                text("UPDATE deliveries SET lease_until = :past WHERE status = 'sending'"),
                {"past": (utcnow() - timedelta(seconds=1)).replace(tzinfo=None)},
            )
        other = _Sink()
        assert _send(store, edition_id, other, queue=False).counts == {"sent": 23}
    finally:
        stalled.thaw.set()
        run.join(60)
    with store.engine.connect() as connection:
        attempts: dict[int, int] = dict(
            connection.execute(
                text("SELECT id, attempts FROM deliveries WHERE edition_id = :e"),
                {"e": edition_id},
            ).all()
        )
    on_the_wire = stalled.sent[7:14]
    assert {i for i, n in attempts.items() if n != 1} == set(on_the_wire), attempts
    assert all(attempts[i] == 2 for i in on_the_wire)
    assert len(stalled.sent) == 14  # batches 1 and 2: the one claimed ahead stayed home
    assert len(set(stalled.sent + other.sent)) == 30
    assert len(stalled.sent) + len(other.sent) == 30 + 7  # batch 2 twice, nothing else
    assert store.delivery_counts(edition_id) == {"sent": 30}


class _SlowRecords(Store):
    """A store whose record of a batch takes 0.3 s (a loaded database), on the event loop
    as the dispatcher calls it; ``fail_start``: counting the attempt of that batch fails."""

    def __init__(self, store: Store, fail_start: int = 0) -> None:
        super().__init__(store.engine)
        self.fail_start, self.starts = fail_start, 0

    def finish_deliveries(self, *args: Any, **kwargs: Any) -> int:
        time.sleep(0.3)
        return super().finish_deliveries(*args, **kwargs)

    def start_attempt(self, claim_token: str) -> set[int]:
        self.starts += 1
        if self.starts == self.fail_start:
            raise RuntimeError("the database went away")
        return super().start_attempt(claim_token)


class _TimedSink(_Sink):
    """Half a second on the wire per batch; when each batch went out and came back."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[tuple[float, float]] = []

    async def send_batch(
        self, messages: Sequence[OutgoingMessage], answered: Answered | None = None
    ) -> list[SendResult]:
        started = time.monotonic()
        await asyncio.sleep(0.5)
        self.spans.append((started, time.monotonic()))
        return await super().send_batch(messages)


def test_the_sessions_do_not_wait_for_a_batch_to_be_recorded(lite: tuple[Store, int]) -> None:
    """Recording a batch takes 0.3 s here; from the second batch on (claimed ahead), the
    next batch goes on the wire as soon as the one before comes back, which is recorded
    while the next is out. Before, the sessions idled while each batch was recorded."""
    store, edition_id = lite
    store.queue_deliveries(edition_id)
    sink = _TimedSink()
    report = _send(_SlowRecords(store), edition_id, sink, queue=False)
    assert report.counts == {"sent": 30}
    assert store.delivery_counts(edition_id) == {"sent": 30}  # the last one too
    gaps = [b[0] - a[1] for a, b in zip(sink.spans, sink.spans[1:], strict=False)]
    assert len(gaps) == 4 and max(gaps[1:]) < 0.2, gaps


def test_a_sent_batch_is_recorded_when_the_next_cannot_go_out(lite: tuple[Store, int]) -> None:
    """The database fails as the second batch goes out: the first batch, sent and waiting
    for its record, is recorded all the same, and the second's rows are not counted as
    tried (its lease brings them back)."""
    store, edition_id = lite
    store.queue_deliveries(edition_id)
    sink = _TimedSink()
    with pytest.raises(RuntimeError, match="went away"):
        _send(_SlowRecords(store, fail_start=2), edition_id, sink, queue=False)
    assert len(sink.sent) == 7
    counts = store.delivery_counts(edition_id)
    assert counts["sent"] == 7 and counts.get("sending") == 7, counts


@pytest.mark.parametrize("engine", ["lite", "pg"])
def test_a_batch_s_results_are_recorded_alike_on_both_engines(
    engine: str, request: pytest.FixtureRequest
) -> None:
    """Sent, deferred (with its retry time), failed and hard-bounced rows of one claim
    recorded in one go (on PostgreSQL one statement, in one transaction with the bounces'
    suppression); a row another sender took since is left alone and not counted, but the
    reader of a bounce on such a row is suppressed all the same (the server's word on the
    address), and nobody else is."""
    from sqlalchemy import text

    store, edition_id = request.getfixturevalue(engine)
    store.queue_deliveries(edition_id)
    claimed = store.claim_deliveries(edition_id, 6, lease_seconds=60)
    token = claimed[0][0].claim_token
    ids = [row.id for row, _ in claimed]
    readers = {row.id: row.subscriber_id for row, _ in claimed}
    with store.engine.begin() as connection:  # the last two rows: another sender's now
        connection.execute(
            text("UPDATE deliveries SET claim_token = 'other' WHERE id IN (:i, :j)"),
            {"i": ids[3], "j": ids[5]},
        )
    later = store.clock.now() + timedelta(minutes=5)
    recorded = store.finish_deliveries(
        [
            (ids[0], "sent", "250 ok", "<a@t>"),
            (ids[1], "deferred", "451 later", "<b@t>"),
            (ids[2], "failed", "", "<c@t>"),
            (ids[3], "sent", "250 ok", "<d@t>"),
            (ids[4], "failed", "550 no such user", "<e@t>"),  # a hard bounce, held
            (ids[5], "failed", "550 no such user", "<f@t>"),  # a hard bounce, taken
        ],
        token,
        {ids[1]: later},
        bounced=[ids[4], ids[5]],
    )
    assert recorded == 4
    with store.engine.connect() as connection:
        rows = {
            row.id: row
            for row in connection.execute(
                text(
                    "SELECT id, status, error, message_id, sent_at, retry_at, lease_until "
                    "FROM deliveries WHERE id IN (:a, :b, :c, :d, :e, :f)"
                ),
                dict(zip("abcdef", ids, strict=True)),
            )
        }
        statuses = dict(
            connection.execute(
                text("SELECT id, status FROM subscribers WHERE id IN (:a, :b, :c, :d, :e, :f)"),
                dict(zip("abcdef", readers.values(), strict=True)),
            ).all()
        )
    sent, deferred, failed, taken, bounced, bounced_taken = (rows[i] for i in ids)
    assert (sent.status, sent.error, sent.message_id) == ("sent", "250 ok", "<a@t>")
    assert sent.sent_at is not None and sent.lease_until is None
    assert (deferred.status, deferred.error, deferred.sent_at) == ("deferred", "451 later", None)
    retry = deferred.retry_at  # SQLite gives the stored text back
    retry = datetime.fromisoformat(retry) if isinstance(retry, str) else retry
    assert retry is not None and abs(retry - later.replace(tzinfo=None)) < timedelta(seconds=1)
    assert (failed.status, failed.error, failed.sent_at) == ("failed", None, None)
    assert (taken.status, taken.message_id) == ("sending", None)
    assert (bounced.status, bounced.error) == ("failed", "550 no such user")
    assert (bounced_taken.status, bounced_taken.message_id) == ("sending", None)
    suppressed = {readers[ids[4]], readers[ids[5]]}
    assert {i: s for i, s in statuses.items() if s != "active"} == dict.fromkeys(
        suppressed, "bounced"
    )
    assert len(statuses) == 6
