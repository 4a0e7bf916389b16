"""`digest worker` on PostgreSQL: several drain one edition together without sharing a
row, a worker killed with kill -9 leaves rows that come back after their lease, and each
writes a heartbeat row that `digest status` lists.

Real processes where it matters (a kill -9), a real SMTP server, the PostgreSQL server
scripts/test starts (skipped without one).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from digest.app import App
from digest.config import load_config
from digest.editions import build_edition
from digest.pipeline import gather_sources
from digest.store import utcnow
from digest.worker import run_worker
from tests.conftest import ROOT, FeedServer, free_port, rss, run_cli

READERS = 60


class SlowSink:
    """An SMTP server that takes ``delay`` seconds per message and counts each recipient."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.received: Counter[str] = Counter()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(self.delay)
        for rcpt in envelope.rcpt_tos:
            self.received[rcpt] += 1
        return "250 OK"


@pytest.fixture
def slow_sink() -> object:
    sink = SlowSink(0.05)
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    sink.port = controller.port  # type: ignore[attr-defined]
    yield sink
    controller.stop()


def _config(
    write_config, feed_server: FeedServer, database: str, port: int, lease: float = 3
) -> Path:
    url = feed_server.add(
        "/wire.xml",
        rss([{"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}]),
    )
    path: Path = write_config([("Wire", url)], transport="smtp", smtp_port=port)
    text = path.read_text().replace('"sqlite:///digest.db"', f'"{database}"')
    text = text.replace(
        "retry_base_seconds = 0  # tests retry deferred messages on the very next run",
        f"retry_base_seconds = 0\nbatch_size = 5\nlease_seconds = {lease}",
    )
    text += "\n[worker]\npoll_seconds = 0.2\nheartbeat_seconds = 0.2\n"
    path.write_text(text)
    return path


def queue_sent(app: App) -> int:
    """Rows already sent (the killed worker's earlier batches)."""
    return sum(
        n
        for edition in app.store.editions()
        if edition.id
        for state, n in app.store.delivery_counts(edition.id).items()
        if state == "sent"
    )


def _queued(config: Path) -> tuple[App, int]:
    """The app, with the current slot's edition built and queued to every reader."""
    app = App.open(load_config(config))
    for i in range(READERS):
        app.store.add_subscriber(f"reader{i:03d}@example.org")
    asyncio.run(gather_sources(app))
    edition, _ = build_edition(app, app.config.digests[0], utcnow())
    assert edition.id is not None
    assert app.store.queue_deliveries(edition.id) == READERS
    return app, edition.id


def test_workers_share_an_edition_without_sharing_a_row(
    postgres_database: str, feed_server: FeedServer, write_config, slow_sink
) -> None:
    config = _config(write_config, feed_server, postgres_database, slow_sink.port)
    app, edition_id = _queued(config)
    stop = threading.Event()
    sent: dict[int, int] = {}

    apps = [App.open(load_config(config)) for _ in range(3)]  # migrations: one at a time

    def one(me: int) -> None:
        stats = asyncio.run(run_worker(apps[me], stop, rounds=1))
        sent[me] = stats.sent

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for worker_app in apps:
        worker_app.close()
    try:
        assert sum(sent.values()) == READERS
        assert all(n > 0 for n in sent.values()), sent  # each took a share
        assert set(slow_sink.received.values()) == {1}  # nobody twice
        assert len(slow_sink.received) == READERS
        assert app.store.delivery_counts(edition_id) == {"sent": READERS}
        assert app.store.workers() == []  # each removed its heartbeat row on the way out
    finally:
        app.close()


@pytest.mark.slow
def test_a_killed_workers_rows_come_back_after_their_lease(
    postgres_database: str, feed_server: FeedServer, write_config, slow_sink
) -> None:
    slow_sink.delay = 0.3  # a batch of 5 takes 1.5 s: time to kill it with rows in flight
    # A lease long enough that the retry below starts well inside it on a busy machine.
    config = _config(write_config, feed_server, postgres_database, slow_sink.port, lease=30)
    app, edition_id = _queued(config)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(config), "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while app.store.delivery_counts(edition_id).get("sending", 0) == 0:
            assert time.monotonic() < deadline, "the worker never claimed a batch"
            time.sleep(0.05)
        listed = app.store.workers()
        assert [w.pid for w in listed] == [worker.pid]
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    try:
        state = app.store.outbox_state(edition_id)
        assert state.in_flight == 5 and state.last_back is not None
        # status lists the killed worker (its heartbeat ageing) and the queue.
        code, out, err = run_cli("--config", str(config), "status", "--json")
        assert code == 0, err
        document = json.loads(out)
        assert [(w["role"], w["pid"]) for w in document["workers"]] == [("worker", worker.pid)]
        queue = document["queue"]
        assert queue["in_flight"] == 5 and queue["pending"] == READERS - 5 - queue_sent(app)
        assert queue["in_flight_back_by"] == state.last_back.isoformat()
        assert queue["oldest_pending_seconds"] is not None
        # `digest send` right now sends the rest and names the 5 with when they come back.
        code, out, err = run_cli("--config", str(config), "retry", str(edition_id))
        assert code == 0, err
        assert "5 in flight, held by another sender" in out
        assert f"{state.last_back:%H:%M:%S} UTC" in out
        time.sleep(max(0.0, (state.last_back - utcnow()).total_seconds()) + 0.2)
        stats = asyncio.run(run_worker(app, threading.Event(), rounds=1))
        assert stats.sent == 5  # the killed worker's batch, taken back after its lease
        assert app.store.delivery_counts(edition_id) == {"sent": READERS}
        assert len(slow_sink.received) == READERS
        twice = [r for r, n in slow_sink.received.items() if n > 1]
        assert len(twice) <= 5  # at most the batch the killed worker had on the wire
        # The killed worker's heartbeat stays, ageing: status names it as not seen lately.
        (dead,) = app.store.workers()
        assert dead.pid == worker.pid
    finally:
        app.close()


def test_a_per_second_limit_holds_for_two_workers_together(
    postgres_database: str, feed_server: FeedServer, write_config, slow_sink
) -> None:
    """per_second = 10 with two workers: 10 a second between them (by the rows' sent_at,
    one batch of slack), not 10 each."""
    slow_sink.delay = 0.0
    config = _config(write_config, feed_server, postgres_database, slow_sink.port)
    config.write_text(config.read_text() + "\n[delivery.rate]\nper_second = 10\n")
    app, edition_id = _queued(config)
    apps = [App.open(load_config(config)) for _ in range(2)]
    sent: dict[int, int] = {}

    def one(me: int) -> None:
        sent[me] = asyncio.run(run_worker(apps[me], threading.Event(), rounds=1)).sent

    started = time.monotonic()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    took = time.monotonic() - started
    for worker_app in apps:
        worker_app.close()
    try:
        assert sum(sent.values()) == READERS and all(sent.values()), sent
        per_second = Counter(
            int(d.sent_at.timestamp()) for d, _ in app.store.deliveries(edition_id) if d.sent_at
        )
        assert max(per_second.values()) <= 10 + 5, per_second  # the limit, plus one batch
        assert took >= (READERS - 10) / 10 - 1  # the first second's 10 at once, then 10 a second
    finally:
        app.close()
