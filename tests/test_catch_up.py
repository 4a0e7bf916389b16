"""After the daemon was away, each reader gets the latest slot they missed, once: no storm
of every slot of the grace hour, nothing from before the digest was first scheduled, and
no slot lost behind a long job sent after a newer edition (nor mistaken for a schedule
change)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apscheduler.job import Job

from digest.app import App
from digest.config import load_config
from digest.pipeline import run_digest
from digest.schedule.daemon import build_scheduler
from tests.conftest import FeedServer, rss
from tests.test_daemon import clock_at

EVERY_TWO_MINUTES = "*/2 * * * *"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def app(write_config, feed_server: FeedServer) -> Iterator[App]:
    """A digest every two minutes that sends even without stories, and one reader."""
    url = feed_server.add("/f.xml", rss([{"title": "Tide", "guid": "1", "link": "https://t/1"}]))
    config: Path = write_config([("Wire", url)], schedule=EVERY_TWO_MINUTES)
    config.write_text(  # an edition goes out with or without stories: each one counts here
        config.read_text().replace("lookback_hours = 48", "lookback_hours = 48\nsend_empty = true")
    )
    app = App.open(load_config(config))
    app.store.add_subscriber("ana@example.org")  # not through the CLI: it resets the logging
    yield app
    app.close()


def _jobs(app: App, now: datetime) -> tuple[Job, Job, datetime]:
    """The digest's job, the retry job, and when the digest's job first runs, for a
    daemon started at ``now``."""
    scheduler = build_scheduler(app, now)
    scheduler.start(paused=True)
    try:
        job, retry = scheduler.get_job("digest:daily"), scheduler.get_job("retry")
        return job, retry, job.next_run_time
    finally:
        scheduler.shutdown(wait=False)


def _sent(app: App) -> dict[datetime, dict[str, int]]:
    return {e.slot: app.store.delivery_counts(e.id or 0) for e in app.store.editions(limit=100)}


def test_a_first_start_sends_no_backlog_and_a_restart_after_an_hour_sends_one_edition(
    app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    start = utc("2026-11-30 12:01:30")  # a fresh database: every slot of the hour unsent
    job, retry, first_run = _jobs(app, start)
    assert first_run != start  # the cron's next slot: nothing is owed at once
    clock_at(app, start)
    retry.func(*retry.args)  # the retry tick finds no lost slot either
    assert _sent(app) == {}

    clock_at(app, utc("2026-11-30 12:02"))  # the first regular slot
    job.func(*job.args)
    assert _sent(app) == {utc("2026-11-30 12:02"): {"sent": 1}}

    back = utc("2026-11-30 13:05:10")  # down from 12:03 until 13:05: 30 slots missed
    with caplog.at_level(logging.WARNING):
        job, retry, first_run = _jobs(app, back)
    assert first_run == back  # one is owed, at once
    assert "29 slots missed while the daemon was down (12:06 to 13:02) not sent" in (caplog.text)
    clock_at(app, back)
    job.func(*job.args)
    retry.func(*retry.args)
    assert _sent(app) == {
        utc("2026-11-30 12:02"): {"sent": 1},
        utc("2026-11-30 13:04"): {"sent": 1},  # the latest missed slot, alone
    }
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _jobs(app, back)  # a reload: the skipped slots were said once, not again
    assert "missed" not in caplog.text


def test_slots_lost_behind_a_long_job_are_not_sent_late_nor_called_a_schedule_change(
    app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    job, retry, _ = _jobs(app, utc("2026-11-30 11:59"))
    for at in ("12:00:05", "12:06:05"):  # the 12:02 and 12:04 fires were skipped
        clock_at(app, utc(f"2026-11-30 {at}"))
        asyncio.run(run_digest(app, "daily", gather_first=False))
    clock_at(app, utc("2026-11-30 12:08:10"))
    with caplog.at_level(logging.INFO):
        job.func(*job.args)
        retry.func(*retry.args)
    assert "digest daily: edition" in caplog.text  # the log is heard
    assert "schedule changed" not in caplog.text and "has no edition" not in caplog.text
    assert sorted(_sent(app)) == [utc(f"2026-11-30 {t}") for t in ("12:00", "12:06", "12:08")]
    [send] = [r for r in app.store.job_runs() if r.job == "send daily"]
    assert send.summary.startswith("edition ") and "1 sent" in send.summary

    # Asked for by hand, an old slot is refused for what it is: it has passed.
    late = asyncio.run(run_digest(app, "daily", now=utc("2026-11-30 12:02"), gather_first=False))
    assert "has passed" in late.idle and "schedule changed" not in late.idle


def test_a_daemon_back_past_the_hour_of_grace_says_the_slot_it_will_not_send(
    write_config, feed_server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Down from 06:30 to 08:30 (a reboot that hung): the 07:00 edition is not sent late on
    return, as designed; the daemon's log said nothing of it. It says so now, with the
    command that sends it."""
    from datetime import timedelta

    url = feed_server.add("/f.xml", rss([{"title": "Tide", "guid": "1", "link": "https://t/1"}]))
    app = App.open(load_config(write_config([("Wire", url)], schedule="0 7 * * *")))
    try:
        seven = utc("2026-11-30 07:00")
        app.store.scheduled_since("daily", seven - timedelta(days=2))  # running since then
        back = seven + timedelta(hours=1, minutes=30)
        clock_at(app, back)
        with caplog.at_level(logging.WARNING):
            _jobs(app, back)
    finally:
        app.close()
    assert (
        "digest daily: the 2026-11-30 07:00 UTC slot passed while the daemon was down, over "
        "an hour ago: not sent" in caplog.text
    ), caplog.text
    assert "`digest send --digest daily` sends it now" in caplog.text
