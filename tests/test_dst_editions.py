"""The nights the clocks change, at the daemon's level: the digest's job fires on its
APScheduler trigger as the scheduler would (the next fire asked at the moment the last one
runs), with the app's clock at each fire, through the real pipeline into a Maildir. Each
local date gets one edition per time of the schedule, as cron sends a fixed-time job: a
time the clocks repeat fires the first time only, a time they skip fires after the jump.

New York 2026: the clocks go forward at 02:00 on Sunday 8 March (02:00-03:00 never
happens) and back at 02:00 on Sunday 1 November (01:00-02:00 happens twice).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest.app import App
from digest.config import load_config
from digest.schedule.daemon import build_scheduler
from tests.conftest import FeedServer, rss, run_cli
from tests.test_daemon import clock_at
from tests.test_local_time import _received

NEW_YORK = ZoneInfo("America/New_York")


def utc(text: str) -> datetime:
    """'2026-11-01 05:30' as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _run_daemon_job(app: App, start: datetime, end: datetime) -> list[datetime]:
    """Run the digest's job at each of its fires in [start, end), 20 seconds after each, as
    the daemon's scheduler would; the fires (UTC)."""
    job = build_scheduler(app, start).get_job("digest:daily")
    fires: list[datetime] = []
    fire = job.trigger.get_next_fire_time(None, start)
    while fire is not None and fire < end:
        fires.append(fire.astimezone(UTC))
        clock_at(app, fire.astimezone(UTC) + timedelta(seconds=20))
        job.func(*job.args)
        fire = job.trigger.get_next_fire_time(fire, fire.astimezone(UTC) + timedelta(seconds=20))
    return fires


def _digest_config(write_config, feed_server: FeedServer, schedule: str, lines: str) -> Path:
    """A digest on ``schedule`` that sends even an empty edition, and one subscriber."""
    config = write_config([("Wire", feed_server.add("/f.xml", rss([])))], schedule=schedule)
    more = f"lookback_hours = 48\nsend_empty = true\n{lines}"
    config.write_text(config.read_text().replace("lookback_hours = 48", more))
    return config


# schedule | first UTC day of a 3-day window | the local (New York) times the job fires,
# each an edition
ORDINARY = """
30 1 * * *   | 10-31 | 10-31 01:30, 11-01 01:30, 11-02 01:30
0,30 1 * * * | 10-31 | 10-31 01:00, 10-31 01:30, 11-01 01:00, 11-01 01:30, 11-02 01:00, 11-02 01:30
30 2 * * *   | 03-07 | 03-07 02:30, 03-08 03:00, 03-09 02:30
0,30 2 * * * | 03-07 | 03-07 02:00, 03-07 02:30, 03-08 03:00, 03-09 02:00, 03-09 02:30
"""


@pytest.mark.parametrize(
    ("schedule", "start", "editions"),
    [[cell.strip() for cell in row.split("|")] for row in ORDINARY.strip().splitlines()],
)
def test_a_new_york_digest_sends_one_edition_a_local_date_across_the_clock_change(
    schedule: str, start: str, editions: str, write_config, feed_server, tmp_path: Path
) -> None:
    config = _digest_config(write_config, feed_server, schedule, 'timezone = "America/New_York"')
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    app = App.open(load_config(config))
    try:
        first = utc(f"2026-{start} 00:00")
        app.store.scheduled_since("daily", first - timedelta(days=1))  # running since then
        fires = _run_daemon_job(app, first, first + timedelta(days=3))
        slots = sorted(e.slot for e in app.store.editions(limit=100))
    finally:
        app.close()
    local = [f"{s.astimezone(NEW_YORK):%m-%d %H:%M}" for s in slots]
    assert local == [e.strip() for e in editions.split(",")]
    assert fires == slots  # the job fires at each slot, and only then
    assert len(_received(tmp_path)["ana@example.org"]) == len(slots)  # each one once


# zone | schedule | UTC window | the subscriber's one edition (UTC)
LOCAL = """
America/New_York | 30 1 * * * | 2026-11-01 03:00 | 2026-11-01 05:30
America/New_York | 30 2 * * * | 2026-03-08 05:00 | 2026-03-08 07:00
"""


@pytest.mark.parametrize(
    ("zone", "schedule", "start", "slot"),
    [[cell.strip() for cell in row.split("|")] for row in LOCAL.strip().splitlines()],
)
def test_a_local_time_subscriber_gets_one_edition_the_night_the_clocks_change(
    zone: str, schedule: str, start: str, slot: str, write_config, feed_server, tmp_path: Path
) -> None:
    """The daemon runs a local-time digest every quarter hour (UTC); a New York reader's
    01:30 happens twice on 1 November and 02:30 not at all on 8 March: one edition each."""
    config = _digest_config(write_config, feed_server, schedule, "local_time = true")
    add = ["subscribers", "add", "ana@example.org", "--timezone", zone]
    assert run_cli("--config", str(config), *add)[0] == 0
    app = App.open(load_config(config))
    try:
        first = utc(start)
        app.store.scheduled_since("daily", first - timedelta(days=1))
        fires = _run_daemon_job(app, first, first + timedelta(hours=5))
        slots = [e.slot for e in app.store.editions(limit=100)]
    finally:
        app.close()
    assert len(fires) == 5 * 4  # every quarter hour of the night
    assert slots == [utc(slot)]
    assert len(_received(tmp_path)["ana@example.org"]) == 1
