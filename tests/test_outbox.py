"""The outbox: leases, crash recovery, retry and status, against real SMTP servers."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from digest.app import App
from digest.config import load_config
from digest.store import utcnow
from digest.store.tables import SQLModel
from tests.conftest import ROOT, FeedServer, free_port, rss, run_cli
from tests.store_queries import add_readers, reader_address

CRASH_MESSAGES = int(os.environ.get("DIGEST_CRASH_MESSAGES", "20000"))


class Counting:
    """Accepts everything (or refuses 'reject*' while ``refusing``) and counts per address."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.refusing = True

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refusing and address.startswith("reject"):
            return "554 5.7.1 Message refused by policy"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for address in envelope.rcpt_tos:
            self.received[address] += 1
        return "250 OK"


@pytest.fixture
def counting_server():
    handler = Counting()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, handler
    controller.stop()


def _config(write_config, feed_server: FeedServer, port: int, extra: str = "") -> Path:
    url = feed_server.add(
        "/f.xml",
        rss([{"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}]),
    )
    config = write_config([("Wire", url)], transport="smtp", smtp_port=port)
    text = config.read_text().replace('transport = "smtp"', f'transport = "smtp"\n{extra}')
    config.write_text(text)
    return config


def test_retry_requeues_failed_rows_only_and_status_shows_progress(
    write_config,
    feed_server: FeedServer,
    counting_server,
) -> None:
    port, handler = counting_server
    config = _config(write_config, feed_server, port)
    for address in ("ana@example.org", "reject@example.org", "bob@example.org"):
        assert run_cli("--config", str(config), "subscribers", "add", address)[0] == 0
    code, out, err = run_cli("--config", str(config), "send", "--gather")
    assert code == 0 and "1 failed" in out and "2 sent" in out
    assert "reject@example.org: failed: 554 5.7.1" in err

    code, out, _ = run_cli("--config", str(config), "status", "--json")
    (edition,) = json.loads(out)["editions"]
    assert edition["deliveries"] == {"sent": 2, "failed": 1}
    assert edition["progress"] == 1.0

    handler.refusing = False  # the server's policy was fixed
    code, out, _ = run_cli("--config", str(config), "retry", str(edition["id"]))
    assert code == 0 and "1 failed deliveries re-queued" in out and "1 sent" in out
    assert handler.received == {"ana@example.org": 1, "bob@example.org": 1, "reject@example.org": 1}
    code, out, _ = run_cli("--config", str(config), "retry", str(edition["id"]))
    assert "0 failed deliveries re-queued" in out
    assert sum(handler.received.values()) == 3  # nothing went twice


def test_a_lease_keeps_a_row_until_it_runs_out(write_config, feed_server: FeedServer) -> None:
    config = _config(write_config, feed_server, 25)
    for address in ("ana@example.org", "bob@example.org"):
        assert run_cli("--config", str(config), "subscribers", "add", address)[0] == 0
    app = App.open(load_config(config))
    try:
        from digest.editions import build_edition

        edition, _ = build_edition(app, app.config.digests[0], utcnow())
        assert edition.id is not None
        assert app.store.queue_deliveries(edition.id) == 2
        first = app.store.claim_deliveries(edition.id, 1, lease_seconds=60)
        second = app.store.claim_deliveries(edition.id, 5, lease_seconds=60)
        assert len(first) == 1 and len(second) == 1 and first[0][0].id != second[0][0].id
        assert app.store.claim_deliveries(edition.id, 5) == []  # nobody can take them now
        assert app.store.reclaim_expired(edition.id) == 0  # the leases still hold
        deliveries = SQLModel.metadata.tables["deliveries"]
        with app.engine.begin() as connection:  # time passes: the sender died
            connection.execute(
                deliveries.update().values(lease_until=utcnow() - timedelta(seconds=1))
            )
        assert app.store.reclaim_expired(edition.id) == 2
        assert len(app.store.claim_deliveries(edition.id, 5)) == 2
    finally:
        app.close()


def _add_subscribers(config: Path, count: int) -> None:
    app = App.open(load_config(config))
    try:
        add_readers(app.engine, count)
    finally:
        app.close()


@pytest.mark.slow
def test_kill_9_three_times_every_subscriber_gets_the_edition(
    write_config,
    feed_server: FeedServer,
    counting_server,
) -> None:
    port, handler = counting_server
    config = _config(write_config, feed_server, port, extra="batch_size = 200\nlease_seconds = 1.0")
    _add_subscribers(config, CRASH_MESSAGES)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "digest", "--config", str(config), "send", "--gather"]
    rng = random.Random(7)
    kill_points = sorted(rng.sample(range(CRASH_MESSAGES // 10, CRASH_MESSAGES * 9 // 10), 3))
    kills = 0
    for point in [*kill_points, None]:
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        if point is None:
            output, _ = process.communicate(timeout=600)
            assert process.returncode == 0, output
            break
        deadline = time.monotonic() + 300
        while sum(handler.received.values()) < point and process.poll() is None:
            assert time.monotonic() < deadline, "the sender stalled"
            time.sleep(0.01)
        assert process.poll() is None, "the sender finished before the planned kill"
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        time.sleep(1.2)  # let the dead sender's lease run out
    assert kills == 3
    missing = [i for i in range(CRASH_MESSAGES) if not handler.received[reader_address(i)]]
    assert missing == [], f"{len(missing)} subscribers never got the edition"
    duplicates = sum(handler.received.values()) - CRASH_MESSAGES
    print(
        f"\ncrash test: {CRASH_MESSAGES} subscribers, 3 kill -9, {duplicates} duplicates "
        f"(at most one message a session, 2 sessions, was between the server's reply and "
        f"its line in the batch's progress file at each kill)"
    )
    # What the server took before a kill is kept in the batch's progress file and recorded
    # by the next run; only a message whose reply had not been read (or not yet written
    # down: microseconds) when the kill came can go twice, one per SMTP session at most.
    sessions = load_config(config).delivery.smtp.connections
    assert 0 <= duplicates <= 3 * sessions
