"""Local-time slots: a local-time digest runs every quarter hour (UTC) a local time can fall
on, and each subscriber's zone fires at exactly one of those slots per local day.

Zones a whole hour from UTC are not the only ones: Kolkata is +5:30, Kathmandu +5:45,
St John's -3:30 (-2:30 in summer), Adelaide +9:30 (+10:30), Tehran +3:30, Chatham +12:45
(+13:45); Lord Howe moves its clocks by half an hour. On the night the clocks go back a
fixed local time happens twice and fires the first time only; on the night they go
forward a time the clocks skip fires at the jump, as an ordinary digest does (crontab's rule).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from digest.app import App
from digest.clock import ManualClock
from digest.config import load_config
from digest.editions.views import earlier_editions
from digest.pipeline import gather_sources, run_digest
from digest.records import EarlierEditions, EarlierStored
from digest.schedule import fires_at, latest_slot, local_time_schedule
from digest.schedule.daemon import build_scheduler
from tests.conftest import FeedServer, rss
from tests.test_daemon import clock_at
from tests.test_local_time import _received, local_time_config

QUARTER = timedelta(minutes=15)


def utc(text: str) -> datetime:
    """'2026-11-30 01:30' as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "runs_on"),
    [
        ("0 7 * * *", "0,15,30,45 * * * *"),
        ("10 7 * * *", "10,25,40,55 * * * *"),
        ("50 6 * * 1-5", "5,20,35,50 * * * *"),
        ("0,20 7 * * *", "0,5,15,20,30,35,45,50 * * * *"),
        ("*/5 7 * * *", ",".join(str(m) for m in range(0, 60, 5)) + " * * * *"),
    ],
)
def test_a_local_time_digest_runs_every_quarter_hour_from_its_minute(
    schedule: str, runs_on: str
) -> None:
    assert local_time_schedule(schedule) == runs_on


# zone | schedule | the first day (UTC) of a 72-hour window | every fire in it (UTC) | case;
# 2026 throughout.
TABLE = """
Asia/Kolkata        | 0 7 * * *  | 11-30 | 11-30 01:30, 12-01 01:30, 12-02 01:30 | +5:30
Asia/Kathmandu      | 0 7 * * *  | 11-30 | 11-30 01:15, 12-01 01:15, 12-02 01:15 | +5:45
Asia/Tehran         | 0 7 * * *  | 11-30 | 11-30 03:30, 12-01 03:30, 12-02 03:30 | +3:30
Pacific/Chatham     | 0 7 * * *  | 11-30 | 11-30 17:15, 12-01 17:15, 12-02 17:15 | +13:45
Europe/Paris        | 0 7 * * *  | 11-30 | 11-30 06:00, 12-01 06:00, 12-02 06:00 | +1

# The clocks go forward (St John's at 05:30 UTC on 8 March, Adelaide at 16:30 UTC on 3 Oct,
# Troll from +0 to +2 at 01:00 UTC on 29 March). A skipped time fires at the jump.
America/St_Johns    | 0 7 * * *  | 03-07 | 03-07 10:30, 03-08 09:30, 03-09 09:30 | -3:30 to -2:30
Australia/Adelaide  | 0 7 * * *  | 10-02 | 10-02 21:30, 10-03 20:30, 10-04 20:30 | +9:30 to +10:30
America/New_York    | 30 2 * * * | 03-07 | 03-07 07:30, 03-08 07:00, 03-09 06:30 | 02:30 skipped
Europe/London       | 30 1 * * * | 03-28 | 03-28 01:30, 03-29 01:00, 03-30 00:30 | 01:30 skipped
Australia/Adelaide  | 30 2 * * * | 10-02 | 10-02 17:00, 10-03 16:30, 10-04 16:00 | 02:30 skipped
Australia/Lord_Howe | 15 2 * * * | 10-02 | 10-02 15:45, 10-03 15:30, 10-04 15:15 | 02:15 skipped
Antarctica/Troll    | 30 2 * * * | 03-28 | 03-28 02:30, 03-29 01:00, 03-30 00:30 | 2 hours skipped

# The clocks go back: the repeated time fires the first time only.
America/New_York    | 30 1 * * * | 10-31 | 10-31 05:30, 11-01 05:30, 11-02 06:30 | 01:30 twice
Europe/London       | 30 1 * * * | 10-24 | 10-24 00:30, 10-25 00:30, 10-26 01:30 | 01:30 twice
America/St_Johns    | 30 1 * * * | 10-31 | 10-31 04:00, 11-01 04:00, 11-02 05:00 | 01:30 twice
Australia/Adelaide  | 30 2 * * * | 04-03 | 04-03 16:00, 04-04 16:00, 04-05 17:00 | 02:30 twice
Australia/Lord_Howe | 45 1 * * * | 04-03 | 04-03 14:45, 04-04 14:45, 04-05 15:15 | 01:45 twice
America/St_Johns    | 0 7 * * *  | 10-31 | 10-31 09:30, 11-01 10:30, 11-02 10:30 | -2:30 to -3:30
"""
CASES = [
    [cell.strip() for cell in row.split("|")]
    for row in TABLE.splitlines()
    if row.strip() and not row.startswith("#")
]


@pytest.mark.parametrize(
    ("zone", "schedule", "start", "fires"),
    [case[:4] for case in CASES],
    ids=[f"{case[0]} {case[4]}" for case in CASES],
)
def test_each_zone_fires_at_one_quarter_hour_slot_per_local_day(
    zone: str, schedule: str, start: str, fires: str
) -> None:
    """Run as the daemon does, a few minutes late, every quarter hour for 72 hours."""
    first = utc(f"2026-{start} 00:00")
    runs = [first + k * QUARTER for k in range(72 * 4)]
    slots = [
        latest_slot(local_time_schedule(schedule), "UTC", run + timedelta(minutes=4))
        for run in runs
    ]
    assert slots == runs  # each run is its own quarter-hour slot
    fired = [slot for slot in slots if fires_at(schedule, zone, slot)]
    assert fired == [utc(f"2026-{fire.strip()}") for fire in fires.split(",")]
    days = [slot.astimezone(ZoneInfo(zone)).date() for slot in fired]
    assert days == [days[0] + timedelta(days=k) for k in range(len(days))]  # one a local day


def test_the_daemon_runs_a_local_time_digest_every_quarter_hour(write_config, feed_server) -> None:
    config = write_config([("Wire", feed_server.add("/f.xml", rss([])))], schedule="0 7 * * *")
    config.write_text(config.read_text().replace("lookback_hours = 48", "local_time = true"))
    app = App.open(load_config(config))
    try:
        job = build_scheduler(app, utc("2026-11-30 00:00")).get_job("digest:daily")
        now = utc("2026-11-30 01:02")
        fires: list[datetime] = []
        for _ in range(5):
            now = job.trigger.get_next_fire_time(None, now + timedelta(seconds=1))
            fires.append(now)
        assert fires == [utc("2026-11-30 01:15") + k * QUARTER for k in range(5)]
    finally:
        app.close()


PEOPLE = {
    "kolkata@example.org": "Asia/Kolkata",
    "kathmandu@example.org": "Asia/Kathmandu",
    "stjohns@example.org": "America/St_Johns",
    "adelaide@example.org": "Australia/Adelaide",
    "tehran@example.org": "Asia/Tehran",
    "london@example.org": "Europe/London",
}


@pytest.mark.slow
def test_every_zone_gets_one_edition_a_day_at_its_own_seven(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    """Two days of the daemon's quarter-hour runs through the real pipeline into a Maildir."""
    config = local_time_config(
        write_config, feed_server, "Sun, 29 Nov 2026 12:00:00 GMT", 96, PEOPLE
    )
    # One story, sent on the first day: the second day's edition has nothing new, and goes
    # only because the digest sends empty editions ("nothing new" emails).
    config.write_text(
        config.read_text().replace("local_time = true", "local_time = true\nsend_empty = true")
    )
    app = App.open(load_config(config))
    try:
        asyncio.run(gather_sources(app))
        job = build_scheduler(app, utc("2026-11-30 00:00")).get_job("digest:daily")
        start = utc("2026-11-30 00:00")
        fire = job.trigger.get_next_fire_time(None, start)
        received_on: dict[str, list[date]] = {email: [] for email in PEOPLE}
        seen = {email: 0 for email in PEOPLE}
        sending_slots: set[datetime] = set()
        while fire < start + timedelta(days=2):
            for late in (timedelta(minutes=3), timedelta(minutes=11)):  # a second run: nothing
                report = asyncio.run(run_digest(app, "daily", now=fire + late, gather_first=False))
                assert report.delivery is None or not report.delivery.stopped
            for email, subjects in _received(tmp_path).items():
                if len(subjects) > seen[email]:
                    local = fire.astimezone(ZoneInfo(PEOPLE[email]))
                    assert (local.hour, local.minute) == (7, 0), (email, local)
                    received_on[email] += [local.date()] * (len(subjects) - seen[email])
                    seen[email] = len(subjects)
                    sending_slots.add(fire)
            fire = job.trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
        for email, days in received_on.items():
            assert len(days) == 2 and days[1] - days[0] == timedelta(days=1), (email, days)
        # no edition for a quarter hour where nobody's clock says 07:00
        assert sorted(e.slot for e in app.store.editions(limit=100)) == sorted(sending_slots)
    finally:
        app.close()


def _next_run(app: App, now: datetime) -> datetime:
    """When the daemon, started at ``now``, first runs the digest's job."""
    scheduler = build_scheduler(app, now)
    scheduler.start(paused=True)
    try:
        return scheduler.get_job("digest:daily").next_run_time
    finally:
        scheduler.shutdown(wait=False)


# The story's date, just before the runs below; until that date passes, digest dates it
# when first seen (never in the future), which the long look-back (240 h) also covers.
HARBOUR = "Mon, 30 Nov 2026 00:00:00 GMT"


def test_a_restart_catches_up_every_quarter_hour_it_missed(
    write_config, feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Down from 01:00 to 01:40 UTC: Kathmandu's 07:00 (01:15) and Kolkata's (01:30) were
    both missed; the restart owes each zone its edition, and only those two slots."""
    people = ("kolkata@example.org", "kathmandu@example.org", "london@example.org")
    config = local_time_config(
        write_config, feed_server, HARBOUR, 240, {email: PEOPLE[email] for email in people}
    )
    app = App.open(load_config(config))
    try:
        back = utc("2026-11-30 01:40")
        app.store.scheduled_since("daily", utc("2026-11-29 00:00"))  # running since then
        assert _next_run(app, back) == back  # due at once
        job = build_scheduler(app, back).get_job("digest:daily")
        clock_at(app, back)
        job.func(*job.args)
        received = {email: len(subjects) for email, subjects in _received(tmp_path).items()}
        assert received == {"kathmandu@example.org": 1, "kolkata@example.org": 1}
        assert _next_run(app, back) != back  # all sent: the cron's next fire
    finally:
        app.close()


def test_a_job_started_late_still_sends_the_slot_it_was_for(
    write_config, feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kathmandu's 01:15 fire waits 16 minutes behind a long job and starts at 01:31, in
    Kolkata's slot: it sends both; the 01:30 fire, coalesced behind it, sends nothing more."""
    people = {email: PEOPLE[email] for email in ("kolkata@example.org", "kathmandu@example.org")}
    config = local_time_config(write_config, feed_server, HARBOUR, 240, people)
    app = App.open(load_config(config))
    try:
        job = build_scheduler(app, utc("2026-11-30 01:00")).get_job("digest:daily")
        clock_at(app, utc("2026-11-30 01:31"))
        job.func(*job.args)
        clock_at(app, utc("2026-11-30 01:31:30"))
        job.func(*job.args)
        received = {email: len(subjects) for email, subjects in _received(tmp_path).items()}
        assert received == {"kathmandu@example.org": 1, "kolkata@example.org": 1}
    finally:
        app.close()


def test_a_long_gathering_keeps_the_run_in_the_slot_it_started_in(
    write_config, feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kathmandu's 07:00 is 01:15 UTC; the run starts then, and its gathering takes 20
    minutes: the edition is still Kathmandu's, not the 01:30 slot's (Kolkata's)."""
    import digest.pipeline as pipeline

    kathmandu = {"kathmandu@example.org": PEOPLE["kathmandu@example.org"]}
    config = local_time_config(write_config, feed_server, HARBOUR, 240, kathmandu)
    clock = ManualClock(utc("2026-11-30 01:15") + timedelta(seconds=30))
    gather = pipeline.gather_sources

    async def slow_gather(app: App) -> list:
        reports = await gather(app)
        clock.advance(timedelta(minutes=20))
        return reports

    monkeypatch.setattr(pipeline, "gather_sources", slow_gather)
    app = App.open(load_config(config), clock=clock)
    try:
        report = asyncio.run(run_digest(app, "daily"))
        assert report.edition is not None and report.edition.slot == utc("2026-11-30 01:15")
        assert {e: len(s) for e, s in _received(tmp_path).items()} == {"kathmandu@example.org": 1}
    finally:
        app.close()


def test_a_gather_that_runs_into_the_next_quarter_hour_reads_the_edition_s_earlier_editions(
    write_config, feed_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run for London's 07:00 starts at 07:14:50 and its gather ends at 07:15:20: the
    edition is the 07:00 slot's, and its build reads the earlier editions of that slot (the
    same a topic reader's fallback at the send reads, from the stored slot and build time),
    not the 07:15 slot's (Kathmandu's, none): yesterday's story is not mailed again."""
    config = local_time_config(
        write_config, feed_server, "Mon, 30 Nov 2026 06:00:00 GMT", 48,
        {"london@example.org": "Europe/London"},
    )  # fmt: skip
    app = App.open(load_config(config))
    gather = gather_sources

    async def long_gather(app: App) -> object:
        reports = await gather(app)
        app.store.clock = ManualClock(utc("2026-12-01 07:15:20"))
        return reports

    built: list[EarlierEditions] = []
    read = app.store.earlier_stored

    def earlier_stored(earlier: EarlierEditions, *args: Any, **kwargs: Any) -> EarlierStored:
        built.append(earlier)
        return read(earlier, *args, **kwargs)

    monkeypatch.setattr(app.store, "earlier_stored", earlier_stored)
    try:
        digest = app.config.digests[0]
        clock_at(app, utc("2026-11-30 07:00:30"))
        first = asyncio.run(run_digest(app, "daily"))
        assert first.edition is not None and first.edition.story_count == 1
        assert len(_received(tmp_path)["london@example.org"]) == 1
        clock_at(app, utc("2026-12-01 07:14:50"))
        monkeypatch.setattr("digest.pipeline.gather_sources", long_gather)
        built.clear()

        second = asyncio.run(run_digest(app, "daily"))

        edition = second.edition
        assert edition is not None and edition.slot == utc("2026-12-01 07:00")
        fallback = earlier_editions(app, digest, edition.slot, edition.created_at)
        assert fallback is not None and built
        assert app.store.earlier_edition_ids(fallback) == {first.edition.id}
        assert [app.store.earlier_edition_ids(e) for e in built] == [{first.edition.id}]
        assert edition.story_count == 0 and second.delivery is None  # nothing new
        assert len(_received(tmp_path)["london@example.org"]) == 1
    finally:
        app.close()
