"""The outbox after the slot: leases held by slow batches, rows resumed or expired, retry.

Against real SMTP servers and a real SQLite database, like tests/test_outbox.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from digest.app import App
from digest.config import load_config
from digest.deliver.dispatch import DispatchSettings, dispatch
from digest.editions import SegmentTemplates, build_edition
from digest.pipeline import gather_sources, run_digest
from digest.records import Reader, Recipient
from digest.store import utcnow
from digest.store.tables import SQLModel
from tests.conftest import ROOT, FeedServer, free_port, rss, run_cli
from tests.pg import fresh_database
from tests.test_outbox import _config
from tests.test_smtp_faults import FaultyServer, _rows, _setup


class Slow:
    """Accepts everything, ``delay`` seconds per message (a tarpit), and counts per address."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.received: Counter[str] = Counter()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(self.delay)
        for address in envelope.rcpt_tos:
            self.received[address] += 1
        return "250 OK"


@pytest.fixture
def slow_server() -> Iterator[tuple[int, Slow]]:
    handler = Slow(0.6)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, handler
    controller.stop()


@pytest.fixture
def faulty() -> Iterator[FaultyServer]:
    """The SMTP server of tests/test_smtp_faults.py that misbehaves on purpose."""
    server = FaultyServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for the config's own SQLite file, or a fresh PostgreSQL database (skipped
    without a server, as in tests/test_postgres.py)."""
    if request.param == "sqlite":
        yield None
        return
    with fresh_database() as url:
        yield url


def _on(config: Path, database: str | None) -> Path:
    """The config, on ``database`` when one is given."""
    if database is not None:
        text = config.read_text().replace('"sqlite:///digest.db"', f'"{database}"')
        config.write_text(text)
    return config


def _subscribe(config: Path, *addresses: str) -> None:
    for address in addresses:
        code, _, err = run_cli("--config", str(config), "subscribers", "add", address)
        assert code == 0, err


def _recipient(s: Reader) -> Recipient:
    return Recipient(s.id or 0, s.email, None, "https://u.test", "mailto:u@x.test", "https://p")


READERS = tuple(f"reader{i}@example.org" for i in range(8))


# --- a batch that outlives its lease (bug 4) -------------------------------------------


def test_a_batch_slower_than_its_lease_is_not_taken_by_a_second_sender(
    write_config, feed_server: FeedServer, slow_server: tuple[int, Slow]
) -> None:
    """Two dispatches of one edition at once (the daemon, and cron's `digest send`), a 1 s
    lease and a batch that takes 2.4 s (8 messages, 0.6 s each, 2 connections): the lease is
    renewed while the batch is out, so the second dispatch finds nothing to take and every
    reader gets the edition once."""
    port, handler = slow_server
    config = _config(write_config, feed_server, port)
    _subscribe(config, *READERS)
    app = App.open(load_config(config))
    try:
        digest = app.config.digests[0]
        edition, _ = build_edition(app, digest, utcnow())
        assert edition.id is not None
        templates = SegmentTemplates(app, digest, edition)

        async def one(start_after: float) -> None:
            await asyncio.sleep(start_after)
            async with app.sender() as sender:
                await dispatch(app.store, sender, templates, _recipient, edition.id or 0,
                               DispatchSettings(lease_seconds=1.0))  # fmt: skip

        async def both() -> None:
            await asyncio.gather(one(0.0), one(1.2))  # the second comes after the 1 s lease

        asyncio.run(both())
        assert handler.received == Counter(dict.fromkeys(READERS, 1))
        assert app.store.delivery_counts(edition.id) == {"sent": len(READERS)}
    finally:
        app.close()


@pytest.mark.slow
def test_cron_send_while_the_daemon_sends_mails_nobody_twice(
    write_config, feed_server: FeedServer, slow_server: tuple[int, Slow]
) -> None:
    """The same as two processes: a second `digest send` starts while the first one's only
    batch is still out, past its lease."""
    port, handler = slow_server
    config = _config(write_config, feed_server, port, extra="lease_seconds = 1.0")
    readers = [f"reader{i}@example.org" for i in range(16)]  # one batch of 4.8 s
    _subscribe(config, *readers)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "digest", "--config", str(config), "send"]
    first = subprocess.Popen(
        [*command, "--gather"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while not handler.received and first.poll() is None:  # the batch is out (0.6 s in)
        assert time.monotonic() < deadline, "the first sender never sent"
        time.sleep(0.01)
    time.sleep(0.6)  # past the first sender's original lease
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    out, _ = first.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, (out, second.stdout)
    assert handler.received == Counter(dict.fromkeys(readers, 1))


def test_a_sender_whose_lease_was_taken_cannot_overwrite_the_new_owner(
    write_config, feed_server: FeedServer, database: str | None
) -> None:
    """A sender that stalled past its lease (its rows were reclaimed and claimed by another)
    records nothing on them, and cannot renew or release them."""
    config = _on(_config(write_config, feed_server, 25), database)
    _subscribe(config, "ana@example.org")
    app = App.open(load_config(config))
    try:
        edition, _ = build_edition(app, app.config.digests[0], utcnow())
        assert edition.id is not None
        app.store.queue_deliveries(edition.id)
        ((stalled, _),) = app.store.claim_deliveries(edition.id, 1, lease_seconds=60)
        deliveries = SQLModel.metadata.tables["deliveries"]
        with app.engine.begin() as connection:  # the stalled sender's lease runs out
            connection.execute(
                deliveries.update().values(lease_until=utcnow() - timedelta(seconds=1))
            )
        assert app.store.reclaim_expired(edition.id) == 1
        ((taken, _),) = app.store.claim_deliveries(edition.id, 1, lease_seconds=60)
        assert stalled.id == taken.id and stalled.claim_token != taken.claim_token
        assert stalled.claim_token is not None and taken.claim_token is not None

        assert app.store.renew_lease(stalled.claim_token, 60) == 0
        result = [(taken.id or 0, "deferred", "451 4.7.1 later", "<m@x>")]
        assert app.store.finish_deliveries(result, stalled.claim_token) == 0
        app.store.release_deliveries([taken.id or 0], stalled.claim_token)
        assert app.store.delivery_counts(edition.id) == {"sending": 1}  # still the new owner's

        assert app.store.renew_lease(taken.claim_token, 60) == 1
        sent = [(taken.id or 0, "sent", "250 OK", "<m@x>")]
        assert app.store.finish_deliveries(sent, taken.claim_token) == 1
        assert app.store.delivery_counts(edition.id) == {"sent": 1}
    finally:
        app.close()


# --- earlier editions' waiting rows: resumed, expired, retried (bugs 1 and 8) -----------

DAY = timedelta(days=1)


def _open(config: Path) -> App:
    app = App.open(load_config(config))
    asyncio.run(gather_sources(app))
    return app


def _statuses(app: App, edition_id: int | None) -> dict[str, str]:
    assert edition_id is not None
    return {s.email: d.status for d, s in app.store.deliveries(edition_id)}


def _sends_empty(config: Path) -> Path:
    """These runs gather nothing (the outbox is what they test): send the editions anyway."""
    text = config.read_text()
    config.write_text(text.replace("lookback_hours = 48", "lookback_hours = 48\nsend_empty = true"))
    return config


def _seven_am() -> datetime:
    return utcnow().replace(hour=7, minute=5, second=0, microsecond=0)


def test_unfinished_editions_are_those_with_rows_a_run_must_still_send(
    write_config, feed_server: FeedServer, database: str | None
) -> None:
    """Pending, due deferred and orphaned (lease run out) rows make an edition unfinished,
    oldest first; sent rows, deferred ones not due and live claims do not. Expiry fails
    every waiting row, due or not, with the reason."""
    config = _on(_config(write_config, feed_server, 25), database)
    _subscribe(config, "ana@example.org", "bob@example.org", "cy@example.org")
    app = _open(config)
    try:
        digest = app.config.digests[0]
        old, _ = build_edition(app, digest, _seven_am() - DAY)
        new, _ = build_edition(app, digest, _seven_am())
        assert old.id is not None and new.id is not None
        app.store.queue_deliveries(old.id)
        (ana, _), (bob, _), (cy, _) = app.store.claim_deliveries(old.id, 3, lease_seconds=60)
        token = ana.claim_token or ""
        finished = [(ana.id or 0, "sent", "250 OK", None), (bob.id or 0, "deferred", "451", None)]
        app.store.finish_deliveries(finished, token, {bob.id or 0: utcnow() + DAY})
        # cy's claim is live; bob waits a day

        def unfinished(**kw: Any) -> list[int | None]:
            return [e.id for e in app.store.unfinished_editions(digest.id, **kw)]

        assert unfinished() == []
        assert unfinished(due_only=False) == [old.id]
        app.store.queue_deliveries(new.id)  # three pending rows
        deliveries = SQLModel.metadata.tables["deliveries"]
        with app.engine.begin() as connection:  # cy's sender dies
            connection.execute(
                deliveries.update()
                .where(deliveries.c.id == cy.id)
                .values(lease_until=utcnow() - timedelta(seconds=1))
            )
        assert unfinished() == [old.id, new.id]
        assert unfinished(before=new.slot) == [old.id]
        assert unfinished(since=old.slot + timedelta(seconds=1)) == [new.id]

        assert app.store.expire_unfinished(old.id, "too late") == 2  # bob and cy
        rows = {s.email: d for d, s in app.store.deliveries(old.id)}
        assert {e: (d.status, d.error) for e, d in rows.items()} == {
            "ana@example.org": ("sent", "250 OK"),
            "bob@example.org": ("failed", "too late"),
            "cy@example.org": ("failed", "too late"),
        }
        assert rows["cy@example.org"].claim_token is None
        assert unfinished(due_only=False) == [new.id]
    finally:
        app.close()


def _greylisting(feed_server: FeedServer, write_config, faulty: FaultyServer) -> Path:
    """Ana and Later subscribed, the SMTP server greylisting Later (451) until told not to."""
    faulty.faults.refuse = {"later": "451 4.7.1 Greylisted, try again later"}
    return _sends_empty(
        _setup(feed_server, write_config, faulty.port, "ana@example.org", "later@example.org")
    )


def test_a_greylisted_reader_gets_the_edition_on_the_next_days_run(
    feed_server: FeedServer, write_config, faulty: FaultyServer
) -> None:
    """The daemon fires once a day: tomorrow's run sends today's deferred row (earlier
    edition first) and nobody who subscribed since gets today's edition."""
    config = _greylisting(feed_server, write_config, faulty)
    app = _open(config)
    try:
        first = asyncio.run(run_digest(app, "daily", now=_seven_am(), gather_first=False))
        assert first.edition is not None and first.delivery is not None
        assert first.delivery.counts == {"sent": 1, "deferred": 1}
        faulty.faults.refuse = {}  # greylisting is over
        _subscribe(config, "newbie@example.org")

        second = asyncio.run(run_digest(app, "daily", now=_seven_am() + DAY, gather_first=False))
        assert _statuses(app, first.edition.id) == {
            "ana@example.org": "sent",
            "later@example.org": "sent",
        }  # newbie joined after this edition: no row, no mail
        assert faulty.received == Counter(
            {"ana@example.org": 2, "later@example.org": 2, "newbie@example.org": 1}
        )
        ((resumed, report),) = second.resumed
        assert resumed.id == first.edition.id and report.counts == {"sent": 1}
        assert report.queued == 0
        assert second.delivery is not None and second.delivery.counts == {"sent": 3}
    finally:
        app.close()


def test_rows_held_by_a_daily_limit_go_out_before_the_next_edition(
    feed_server: FeedServer, write_config, tmp_path: Path
) -> None:
    """per_day = 2 and three readers: the one held back today goes first tomorrow, so the
    backlog never starves behind each new edition."""
    url = feed_server.add("/f.xml", rss([{"title": "Tide", "guid": "1", "link": "https://t/1"}]))
    config = _sends_empty(write_config([("Wire", url)], extra="\n[delivery.rate]\nper_day = 2\n"))
    _subscribe(config, "ana@example.org", "bob@example.org", "cy@example.org")
    app = _open(config)
    try:
        first = asyncio.run(run_digest(app, "daily", now=_seven_am(), gather_first=False))
        assert first.edition is not None and first.edition.id is not None
        assert first.delivery is not None and first.delivery.waiting
        assert first.delivery.counts == {"sent": 2}
        deliveries = SQLModel.metadata.tables["deliveries"]
        with app.engine.begin() as connection:  # a day passes: the quota is free again
            connection.execute(deliveries.update().values(sent_at=utcnow() - DAY - DAY / 24))

        second = asyncio.run(run_digest(app, "daily", now=_seven_am() + DAY, gather_first=False))
        assert app.store.delivery_counts(first.edition.id) == {"sent": 3}
        assert second.edition is not None and second.edition.id != first.edition.id
        assert app.store.delivery_counts(second.edition.id or 0) == {"sent": 1, "pending": 2}
        ((resumed, report),) = second.resumed
        assert resumed.id == first.edition.id and report.counts == {"sent": 1}
    finally:
        app.close()


def test_an_edition_too_old_to_go_out_is_marked_failed_with_a_reason(
    feed_server: FeedServer,
    write_config,
    faulty: FaultyServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Three days later the daily edition is stale: its waiting row is failed with a
    reason (and a log line naming the edition), not mailed late; `digest retry` still can."""
    config = _greylisting(feed_server, write_config, faulty)
    app = _open(config)
    try:
        first = asyncio.run(run_digest(app, "daily", now=_seven_am(), gather_first=False))
        assert first.edition is not None and first.edition.id is not None
        faulty.faults.refuse = {}
        # `run_cli` replaced the root handlers (logging.basicConfig(force=True)): listen here
        pipeline_log = logging.getLogger("digest.pipeline")
        pipeline_log.addHandler(caplog.handler)
        try:
            late = asyncio.run(
                run_digest(app, "daily", now=_seven_am() + 3 * DAY, gather_first=False)
            )
        finally:
            pipeline_log.removeHandler(caplog.handler)
        ((row, _),) = [(d, s) for d, s in app.store.deliveries(first.edition.id)
                       if s.email == "later@example.org"]  # fmt: skip
        assert row.status == "failed" and row.error is not None
        assert "too late to go out" in row.error and f"digest retry {first.edition.id}" in row.error
        assert f"1 deliveries marked failed: not sent: edition {first.edition.id}" in caplog.text
        assert faulty.received == Counter({"ana@example.org": 2, "later@example.org": 1})
        assert late.resumed == []

        code, out, _ = run_cli("--config", str(config), "retry", str(first.edition.id))
        assert code == 0 and "1 failed deliveries re-queued" in out and "1 sent" in out
        assert faulty.received["later@example.org"] == 2
    finally:
        app.close()


def test_retry_sends_deferred_rows_before_their_retry_time(
    feed_server: FeedServer, write_config, faulty: FaultyServer
) -> None:
    """`digest retry` is the admin saying "now": a deferred row waiting an hour goes."""
    faulty.faults.refuse = {"later": "451 4.7.1 Greylisted, try again later"}
    config = _sends_empty(_setup(feed_server, write_config, faulty.port, "later@example.org"))
    config.write_text(
        config.read_text().replace("retry_base_seconds = 0", "retry_base_seconds = 3600")
    )
    assert run_cli("--config", str(config), "send", "--gather")[0] == 0
    faulty.faults.refuse = {}
    code, out, _ = run_cli("--config", str(config), "send")
    assert code == 0 and "nothing to send" in out  # not due for an hour
    code, out, _ = run_cli("--config", str(config), "retry", "1")
    assert code == 0 and "1 deferred ones due now" in out and "1 sent" in out, out
    assert _rows(config)["later@example.org"][0] == "sent"
    assert faulty.received == Counter({"later@example.org": 1})


def test_retry_sends_rows_held_by_a_limit_though_none_failed(
    feed_server: FeedServer, write_config, tmp_path: Path
) -> None:
    url = feed_server.add("/f.xml", rss([{"title": "Tide", "guid": "1", "link": "https://t/1"}]))
    config = _sends_empty(write_config([("Wire", url)], extra="\n[delivery.rate]\nper_day = 1\n"))
    _subscribe(config, "ana@example.org", "bob@example.org")
    code, out, _ = run_cli("--config", str(config), "send", "--gather")
    assert code == 0 and "delivery waiting" in out
    config.write_text(config.read_text().replace("per_day = 1", ""))  # the quota is raised
    code, out, _ = run_cli("--config", str(config), "retry", "1")
    assert code == 0 and "0 failed deliveries re-queued" in out and "1 sent" in out, out
    assert len(list((tmp_path / "mail" / "new").iterdir())) == 2


def test_retry_of_an_old_edition_mails_nobody_who_joined_since(
    feed_server: FeedServer, write_config, faulty: FaultyServer
) -> None:
    faulty.faults.refuse = {"policy": "550 5.7.1 Message refused by policy"}
    config = _sends_empty(
        _setup(feed_server, write_config, faulty.port, "ana@example.org", "policy@example.org")
    )
    app = _open(config)
    try:
        week_ago = asyncio.run(
            run_digest(app, "daily", now=_seven_am() - 7 * DAY, gather_first=False)
        )
        asyncio.run(run_digest(app, "daily", now=_seven_am(), gather_first=False))
    finally:
        app.close()
    assert week_ago.edition is not None
    faulty.faults.refuse = {}
    _subscribe(config, "newbie@example.org")
    code, out, _ = run_cli("--config", str(config), "retry", str(week_ago.edition.id))
    assert code == 0 and "1 sent (0 newly queued)" in out, out
    assert faulty.received["policy@example.org"] == 1
    assert faulty.received["newbie@example.org"] == 0


def test_retry_of_an_unknown_edition_names_the_recent_ones(write_config, feed_server) -> None:
    url = feed_server.add("/f.xml", rss([{"title": "Tide", "guid": "1", "link": "https://t/1"}]))
    config = write_config([("Wire", url)])
    code, out, err = run_cli("--config", str(config), "retry", "42")
    assert code != 0 and "no edition 42" in out + err
