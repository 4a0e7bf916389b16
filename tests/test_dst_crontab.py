"""Slots across the clock changes against a minute-by-minute model of cronie's daemon loop.

The model (``cronie_fires``) reads the wall clock once a UTC minute and does what cronie's
``cron.c`` does with the difference from the last minute it ran (its "virtual time"):
one minute on runs every job matching the new minute; a jump forward of 6 minutes to 3
hours runs the wildcard jobs matching the new minute and every fixed-time job matching
any minute from the skipped ones up to the new one; a jump back runs only the wildcard
jobs, until the clock catches up with the virtual time. A job is a wildcard job when its
minute or its hour field starts with ``*`` (entry.c sets ``MIN_STAR``/``HR_STAR``), else a
fixed-time job. Cron fields are parsed here, not by APScheduler, so the model does not
share the code under test's reading of them.

The nights (2026): New York forward 8 March 02:00 -> 03:00, back 1 November 02:00 ->
01:00; Lord Howe Island forward 4 October 02:00 -> 02:30, back 5 April 02:00 -> 01:30
(half an hour); London forward 29 March 01:00 -> 02:00, back 25 October 02:00 -> 01:00.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from digest.schedule.slots import CrontabTrigger, fires_at, slots_between

SCHEDULES = [
    "30 2 * * *",
    "15 1-3 * * *",
    "0,30 2 * * *",
    "0 */2 * * *",
    "*/30 2 * * *",
    "0 0-23/1 * * *",
    "*/15 * * * *",
    "0 7 * * *",
]

# zone | first UTC minute of the window | last; each window holds one clock change and
# the local days either side of it.
NIGHTS = {
    "new-york-forward": ("America/New_York", "2026-03-07 12:00", "2026-03-09 12:00"),
    "new-york-back": ("America/New_York", "2026-10-31 12:00", "2026-11-02 12:00"),
    "lord-howe-forward": ("Australia/Lord_Howe", "2026-10-03 00:00", "2026-10-05 00:00"),
    "lord-howe-back": ("Australia/Lord_Howe", "2026-04-04 00:00", "2026-04-06 00:00"),
    "london-forward": ("Europe/London", "2026-03-28 12:00", "2026-03-30 12:00"),
    "london-back": ("Europe/London", "2026-10-24 12:00", "2026-10-26 12:00"),
}

MINUTE = timedelta(minutes=1)


def utc(text: str) -> datetime:
    """'2026-03-08 07:00' as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _values(field: str, last: int) -> set[int]:
    """The values 0..last a crontab field names: '*', 'a', 'a-b', each with '/step', lists."""
    values: set[int] = set()
    for part in field.split(","):
        span, _, step = part.partition("/")
        if span == "*":
            first, end = 0, last
        else:
            first_text, _, end_text = span.partition("-")
            first = int(first_text)
            end = int(end_text) if end_text else (last if step else first)
        values.update(range(first, end + 1, int(step or 1)))
    return values


def cronie_fires(schedule: str, zone: str, start: datetime, end: datetime) -> list[datetime]:
    """The instants (UTC, whole minutes, in [start, end]) cronie starts the job at."""
    minute_field, hour_field, *days = schedule.split()
    assert days == ["*", "*", "*"], "the model reads minute and hour fields only"
    minutes, hours = _values(minute_field, 59), _values(hour_field, 23)
    wildcard = minute_field.startswith("*") or hour_field.startswith("*")
    tz = ZoneInfo(zone)

    def wall(instant: datetime) -> datetime:
        return instant.astimezone(tz).replace(tzinfo=None, fold=0)

    def matches(moment: datetime) -> bool:
        return moment.minute in minutes and moment.hour in hours

    fires: list[datetime] = []
    now = start - MINUTE
    virtual = wall(now)  # the last wall-clock minute cron ran jobs for
    while now < end:
        now += MINUTE
        clock = wall(now)
        ahead = (clock - virtual) // MINUTE
        if ahead == 1 or abs(ahead) > 3 * 60:  # on time, or the clock was set: run all
            run = matches(clock)
            virtual = clock
        elif ahead > 5:  # forward (clocks go forward): catch up fixed-time jobs
            missed = (virtual + MINUTE * step for step in range(1, ahead + 1))
            run = matches(clock) if wildcard else any(matches(m) for m in missed)
            virtual = clock
        elif ahead > 0:  # woke a few minutes late: every job of each minute missed
            run = any(matches(virtual + MINUTE * step) for step in range(1, ahead + 1))
            virtual = clock
        else:  # back (clocks go back): wildcard jobs only, until caught up
            run = wildcard and matches(clock)
        if run:
            fires.append(now)
    return fires


def _local(fires: list[datetime], zone: str) -> list[str]:
    return [f.astimezone(ZoneInfo(zone)).strftime("%m-%d %H:%M%z") for f in fires]


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize(("zone", "first", "last"), NIGHTS.values(), ids=NIGHTS.keys())
def test_slots_are_the_times_cronie_runs_the_job(
    schedule: str, zone: str, first: str, last: str
) -> None:
    start, end = utc(first), utc(last)
    expected = cronie_fires(schedule, zone, start, end)
    assert _local(slots_between(schedule, zone, start, end), zone) == _local(expected, zone)


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize(("zone", "first", "last"), NIGHTS.values(), ids=NIGHTS.keys())
def test_the_daemon_trigger_fires_when_cronie_runs_the_job(
    schedule: str, zone: str, first: str, last: str
) -> None:
    """The trigger asked as the scheduler asks it: the next fire after the last one, a
    moment after that one ran; and each fire is one ``fires_at`` says yes to."""
    start, end = utc(first), utc(last)
    trigger = CrontabTrigger(schedule, zone)
    fires: list[datetime] = []
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire <= end:
        fires.append(fire)
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=20))
    assert _local(fires, zone) == _local(cronie_fires(schedule, zone, start, end), zone)
    assert all(fires_at(schedule, zone, fire) for fire in fires)


# The model itself, pinned by hand on the nights found wrong: from and to (local wall-clock
# times, the window), and the local times (with their offset) the job fires at. Lord Howe's
# clocks go forward half an hour, Antarctica/Troll's two hours (01:00 -> 03:00 on 29 March)
# and back two (03:00 -> 01:00 on 25 October).
PINNED = [
    (
        "15 1-3 * * *",
        "America/New_York",
        "03-08 00:00",
        "03-08 12:00",
        "03-08 01:15-0500, 03-08 03:00-0400, 03-08 03:15-0400",
    ),
    (
        "0 0-23/1 * * *",
        "America/New_York",
        "03-08 00:30",
        "03-08 04:30",
        "03-08 01:00-0500, 03-08 03:00-0400, 03-08 04:00-0400",
    ),
    (
        "15 0-23/1 * * *",
        "America/New_York",
        "03-08 00:30",
        "03-08 04:30",
        "03-08 01:15-0500, 03-08 03:00-0400, 03-08 03:15-0400, 03-08 04:15-0400",
    ),
    (
        "0 1-3 * * *",
        "Australia/Lord_Howe",
        "10-04 00:00",
        "10-04 12:00",
        "10-04 01:00+1030, 10-04 02:30+1100, 10-04 03:00+1100",
    ),
    (
        "0 */2 * * *",
        "America/New_York",
        "03-08 00:00",
        "03-08 04:30",
        "03-08 00:00-0500, 03-08 04:00-0400",
    ),
    (
        "0 */2 * * *",
        "Australia/Lord_Howe",
        "10-04 00:00",
        "10-04 04:30",
        "10-04 00:00+1030, 10-04 04:00+1100",
    ),
    ("*/30 2 * * *", "America/New_York", "03-08 00:00", "03-08 12:00", ""),
    ("30 2 * * *", "America/New_York", "03-08 00:00", "03-08 12:00", "03-08 03:00-0400"),
    ("0,30 2 * * *", "America/New_York", "03-08 00:00", "03-08 12:00", "03-08 03:00-0400"),
    (
        "0,30 1 * * *",
        "America/New_York",
        "11-01 00:00",
        "11-01 12:00",
        "11-01 01:00-0400, 11-01 01:30-0400",
    ),
    (
        "*/30 1 * * *",
        "America/New_York",
        "11-01 00:00",
        "11-01 12:00",
        "11-01 01:00-0400, 11-01 01:30-0400, 11-01 01:00-0500, 11-01 01:30-0500",
    ),
    (
        "0 0 * * *",
        "Australia/Lord_Howe",
        "10-03 12:00",
        "10-06 12:00",
        "10-04 00:00+1030, 10-05 00:00+1100, 10-06 00:00+1100",
    ),
    (
        "*/30 2,3 * * *",
        "Antarctica/Troll",
        "03-29 00:00",
        "03-29 12:00",
        "03-29 03:00+0200, 03-29 03:30+0200",
    ),
    (
        "*/30 1 * * *",
        "Antarctica/Troll",
        "10-25 00:00",
        "10-25 12:00",
        "10-25 01:00+0200, 10-25 01:30+0200, 10-25 01:00+0000, 10-25 01:30+0000",
    ),
    ("30 1 * * *", "Antarctica/Troll", "03-29 00:00", "03-29 12:00", "03-29 03:00+0200"),
]


@pytest.mark.parametrize(
    ("schedule", "zone", "first", "last", "fires"),
    PINNED,
)
def test_the_model_and_the_slots_on_the_nights_found_wrong(
    schedule: str, zone: str, first: str, last: str, fires: str
) -> None:
    local = ZoneInfo(zone)
    start = datetime.fromisoformat(f"2026-{first}").replace(tzinfo=local).astimezone(UTC)
    end = datetime.fromisoformat(f"2026-{last}").replace(tzinfo=local).astimezone(UTC)
    wanted = [fire.strip() for fire in fires.split(",") if fire.strip()]
    assert _local(cronie_fires(schedule, zone, start, end), zone) == wanted
    assert _local(slots_between(schedule, zone, start, end), zone) == wanted
