"""The daemon's retry job: between a digest's slots, deferred rows go once their retry time
has come, and rows a sending limit held go once it has room.

Against the misbehaving SMTP server of tests/test_smtp_faults.py and a real SQLite database.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from digest.app import App
from digest.config import load_config
from digest.jobs import retry_job, send_job
from digest.pipeline import gather_sources, run_digest
from digest.schedule.daemon import retry_interval_seconds
from digest.sending import rate_limiter
from digest.store import utcnow
from digest.store.tables import SQLModel
from tests.conftest import FeedServer, rss, run_cli
from tests.test_smtp_faults import FaultyServer, _setup

GREYLISTED = "451 4.7.1 Greylisted, try again later"


@pytest.fixture
def faulty() -> Iterator[FaultyServer]:
    server = FaultyServer().start()
    yield server
    server.stop()


def _open(config: Path, retry_base_seconds: int = 300) -> App:
    """The app over ``config`` with a real first retry wait (the tests' config has none)."""
    text = config.read_text().replace(
        "retry_base_seconds = 0", f"retry_base_seconds = {retry_base_seconds}"
    )
    config.write_text(text)
    app = App.open(load_config(config))
    asyncio.run(gather_sources(app))
    return app


def _wait_passes(app: App) -> None:
    """The deferred rows' retry time comes (as it would after the wait)."""
    deliveries = SQLModel.metadata.tables["deliveries"]
    with app.engine.begin() as connection:
        connection.execute(
            deliveries.update()
            .where(deliveries.c.status == "deferred")
            .values(retry_at=utcnow() - timedelta(seconds=1))
        )


def _greylisted(
    feed_server: FeedServer, write_config, faulty: FaultyServer
) -> tuple[Path, App, int]:
    """Ana and a reader the server greylists: the first run sends Ana's copy and defers
    the other. The config, the open app (the caller closes it) and the edition's id."""
    faulty.faults.refuse = {"later": GREYLISTED}
    config = _setup(feed_server, write_config, faulty.port, "ana@example.org", "later@example.org")
    app = _open(config)
    first = asyncio.run(run_digest(app, "daily", gather_first=False))
    assert first.edition is not None and first.edition.id is not None
    assert first.delivery is not None and first.delivery.counts == {"sent": 1, "deferred": 1}
    return config, app, first.edition.id


def _jobs(app: App) -> dict[str, tuple[bool, str]]:
    return {j.job: (j.ok, j.summary) for j in app.store.job_runs()}


def test_a_greylisted_reader_gets_the_edition_when_the_wait_is_over_not_tomorrow(
    feed_server: FeedServer, write_config, faulty: FaultyServer
) -> None:
    config, app, edition_id = _greylisted(feed_server, write_config, faulty)
    try:
        assert retry_job(app) == []  # the five minutes are not over: nothing is tried
        assert "retry daily" not in _jobs(app)
        assert faulty.received == Counter({"ana@example.org": 1})

        faulty.faults.refuse = {}  # the greylisting server now accepts
        code, _, err = run_cli("--config", str(config), "subscribers", "add", "new@example.org")
        assert code == 0, err
        _wait_passes(app)
        (report,) = retry_job(app)

        ((edition, delivery),) = report.resumed
        assert edition.id == edition_id and delivery.counts == {"sent": 1}
        # Nobody twice, and the reader who joined since waits for the next edition.
        assert faulty.received == Counter({"ana@example.org": 1, "later@example.org": 1})
        assert app.store.delivery_counts(edition_id) == {"sent": 2}
        assert _jobs(app)["retry daily"] == (True, f"edition {edition_id}: 1 sent")
        assert retry_job(app) == []  # done: the next tick finds nothing
    finally:
        app.close()


def test_cron_retry_due_sends_the_greylisted_reader_as_the_daemon_would(
    feed_server: FeedServer, write_config, faulty: FaultyServer
) -> None:
    """Without the daemon, `digest retry --due` (every five minutes from cron) is the
    retry job."""
    config, app, _ = _greylisted(feed_server, write_config, faulty)
    try:
        code, out, _ = run_cli("--config", str(config), "retry", "--due")
        assert code == 0 and "nothing due" in out, out  # the wait is not over
        faulty.faults.refuse = {}
        _wait_passes(app)
        code, out, err = run_cli("--config", str(config), "retry", "--due")
        assert code == 0, err
        assert "resumed" in out and "delivery: 1 sent" in out, out
        assert faulty.received == Counter({"ana@example.org": 1, "later@example.org": 1})
        code, _, err = run_cli("--config", str(config), "retry")
        assert code == 2 and "either an EDITION to retry or --due" in err, err
    finally:
        app.close()


def test_a_relay_down_at_the_retry_keeps_the_row_and_says_so(
    feed_server: FeedServer, write_config, faulty: FaultyServer
) -> None:
    _, app, edition_id = _greylisted(feed_server, write_config, faulty)
    try:
        faulty.stop()  # the relay goes away before the retry
        _wait_passes(app)
        (report,) = retry_job(app)

        assert not report.ok
        ok, summary = _jobs(app)["retry daily"]
        assert not ok and "stopped" in summary, summary
        assert "nothing sent; stopped" in summary and "nothing to send" not in summary
        counts = app.store.delivery_counts(edition_id)
        assert counts.get("sent") == 1 and counts.get("failed") is None, counts
        assert sum(n for k, n in counts.items() if k in {"pending", "deferred"}) == 1, counts

        deliveries = SQLModel.metadata.tables["deliveries"]
        with app.engine.begin() as connection:  # a later run sent it, the relay back
            connection.execute(deliveries.update().values(status="sent"))
        assert retry_job(app) == []
        assert _jobs(app)["retry daily"] == (True, "nothing waiting")  # no stale FAILED
    finally:
        app.close()


def test_the_retry_job_waits_for_a_spent_daily_quota_then_sends_the_rest(
    feed_server: FeedServer, write_config
) -> None:
    url = feed_server.add("/f.xml", rss([{"title": "Tide", "guid": "1", "link": "https://t/1"}]))
    config = write_config([("Wire", url)], extra="\n[delivery.rate]\nper_day = 2\n")
    for address in ("ana@example.org", "bob@example.org", "cy@example.org"):
        code, _, err = run_cli("--config", str(config), "subscribers", "add", address)
        assert code == 0, err
    app = _open(config)
    try:
        first = asyncio.run(run_digest(app, "daily", gather_first=False))
        assert first.edition is not None and first.edition.id is not None
        assert first.delivery is not None and first.delivery.waiting

        assert retry_job(app) == []  # the day's two are spent: it does not start a wait
        assert app.store.delivery_counts(first.edition.id) == {"sent": 2, "pending": 1}

        deliveries = SQLModel.metadata.tables["deliveries"]
        with app.engine.begin() as connection:  # a day passes: the quota is free again
            connection.execute(deliveries.update().values(sent_at=utcnow() - timedelta(days=1.1)))
        (report,) = retry_job(app)
        assert report.ok and app.store.delivery_counts(first.edition.id) == {"sent": 3}
    finally:
        app.close()


@pytest.mark.parametrize(("base", "interval"), [(0, 60), (30, 60), (300, 300), (86400, 900)])
def test_the_retry_job_looks_as_often_as_the_first_wait_within_a_minute_and_a_quarter_hour(
    write_config, base: int, interval: int
) -> None:
    """Always a retry job, also at a first wait of 0: it sends what a relay outage or a
    limit left, which a weekly digest's next run would come too late for."""
    config = write_config([("Wire", "https://wire.test/feed.xml")])
    config.write_text(
        config.read_text().replace("retry_base_seconds = 0", f"retry_base_seconds = {base}")
    )
    assert retry_interval_seconds(load_config(config)) == interval


def test_every_limit_starts_from_what_was_sent_in_its_period(
    feed_server: FeedServer, write_config, faulty: FaultyServer
) -> None:
    """The minute's allowance spent by a run is spent for the retry tick after it too (and
    for cron's `digest send` beside the daemon): a fresh limiter is no fresh minute."""
    config = _setup(feed_server, write_config, faulty.port, "ana@example.org", "bob@example.org")
    config.write_text(config.read_text() + "\n[delivery.rate]\nper_minute = 2\n")
    app = _open(config)
    try:
        report = asyncio.run(run_digest(app, "daily", gather_first=False))
        assert report.delivery is not None and report.delivery.counts == {"sent": 2}
        assert not rate_limiter(app).ready()
        deliveries = SQLModel.metadata.tables["deliveries"]
        with app.engine.begin() as connection:  # a minute passes
            connection.execute(deliveries.update().values(sent_at=utcnow() - timedelta(seconds=61)))
        assert rate_limiter(app).ready()
    finally:
        app.close()


def test_a_retry_tick_for_one_row_does_not_hold_the_daemon_waiting_on_a_limit(
    feed_server: FeedServer, write_config, faulty: FaultyServer
) -> None:
    """per_hour = 2 is a token every half hour: the run and then the tick each send what
    they have and stop, rather than waiting for a token only to find nothing left (the
    daemon has one worker: gathers and sends would queue behind it)."""
    faulty.faults.refuse = {"later": GREYLISTED}
    config = _setup(feed_server, write_config, faulty.port, "ana@example.org", "later@example.org")
    config.write_text(config.read_text() + "\n[delivery.rate]\nper_hour = 2\n")
    app = _open(config)
    try:
        started = time.monotonic()
        first = asyncio.run(run_digest(app, "daily", gather_first=False))
        assert first.delivery is not None and first.delivery.counts == {"sent": 1, "deferred": 1}
        assert time.monotonic() - started < 20
        faulty.faults.refuse = {}
        _wait_passes(app)
        started = time.monotonic()
        (report,) = retry_job(app)
        took = time.monotonic() - started
        assert [d.counts for _, d in report.resumed] == [{"sent": 1}]
        assert took < 20, f"the retry tick took {took:.0f} s for one message"
    finally:
        app.close()


def test_the_daemon_s_retry_job_sends_a_slot_whose_send_failed_before_building(
    feed_server: FeedServer, write_config
) -> None:
    """The 07:00 send died before building the edition (a locked database, a template
    broken then fixed): the next retry tick within the grace hour builds and sends it, once."""
    from digest.schedule.daemon import build_scheduler

    slot = (utcnow() - timedelta(minutes=10)).replace(second=0, microsecond=0)
    url = feed_server.add("/f.xml", rss([{"title": "Tide", "guid": "1", "link": "https://t/1"}]))
    config = write_config([("Wire", url)], schedule=f"{slot.minute} {slot.hour} * * *")
    # Built as of its slot, the edition has none of the articles gathered since: send it
    # anyway, the test is about the slot being sent at all.
    config.write_text(
        config.read_text().replace("lookback_hours = 48", "lookback_hours = 48\nsend_empty = true")
    )
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    app = _open(config)
    try:
        app.store.scheduled_since("daily", slot - timedelta(days=1))  # the daemon ran then
        scheduler = build_scheduler(app)
        scheduler.start(paused=True)
        retry = scheduler.get_job("retry")
        assert app.store.edition("daily", slot) is None  # as if its send had failed
        retry.func(*retry.args)
        edition = app.store.edition("daily", slot)
        assert edition is not None and edition.id is not None
        assert app.store.delivery_counts(edition.id) == {"sent": 1}
        retry.func(*retry.args)  # the next tick: built, sent, nothing more
        assert app.store.delivery_counts(edition.id) == {"sent": 1}
        assert len(app.store.editions()) == 1
        scheduler.shutdown(wait=False)
    finally:
        app.close()


def test_the_retry_job_leaves_alone_a_slot_older_than_the_last_edition(
    feed_server: FeedServer, write_config, caplog: pytest.LogCaptureFixture
) -> None:
    """The schedule moved earlier after today's edition went: the new schedule's slot in
    the grace hour is older than that edition, and no tick tries to send it."""
    from digest.schedule.daemon import build_scheduler

    sent_slot = (utcnow() - timedelta(minutes=5)).replace(second=0, microsecond=0)
    earlier = sent_slot - timedelta(minutes=20)
    url = feed_server.add("/f.xml", rss([{"title": "Tide", "guid": "1", "link": "https://t/1"}]))
    config = write_config([("Wire", url)], schedule=f"{sent_slot.minute} {sent_slot.hour} * * *")
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    app = _open(config)
    asyncio.run(run_digest(app, "daily", gather_first=False))
    app.close()
    config.write_text(
        config.read_text().replace(
            f'"{sent_slot.minute} {sent_slot.hour} * * *"',
            f'"{earlier.minute} {earlier.hour} * * *"',
        )
    )
    app = _open(config)
    try:
        scheduler = build_scheduler(app)
        scheduler.start(paused=True)
        with caplog.at_level(logging.WARNING):
            retry = scheduler.get_job("retry")
            retry.func(*retry.args)
        assert "has no edition" not in caplog.text and "is newer than" not in caplog.text
        assert len(app.store.editions()) == 1
        scheduler.shutdown(wait=False)
    finally:
        app.close()


def test_a_run_whose_resumed_edition_failed_says_which_in_its_summary(
    feed_server: FeedServer, write_config, faulty: FaultyServer
) -> None:
    """The next slot finds nothing new to send but resumes the earlier edition's deferred
    reader, whom the relay now refuses: the run is FAILED, and its summary (the daemon's
    log line, `digest status`, the console) names that edition and the refusal, not only
    "nothing new"."""
    _, app, edition_id = _greylisted(feed_server, write_config, faulty)
    try:
        faulty.faults.refuse = {"later": "554 5.7.1 Message refused by policy"}
        _wait_passes(app)
        first = app.store.edition_by_id(edition_id)
        assert first is not None
        report = send_job(app, "daily", at=first.slot + timedelta(days=1), gather_first=False)

        assert report is not None and not report.ok
        ok, summary = _jobs(app)["send daily"]
        assert not ok
        assert f"edition {edition_id}: 1 failed" in summary, summary
        assert "554 5.7.1" in summary and f"`digest retry {edition_id}`" in summary, summary
    finally:
        app.close()
