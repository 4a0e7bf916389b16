"""Schedule slots: crontab weekdays (0 and 7 = Sunday), crontab's day-or-weekday rule, and
a digest in Europe/London that keeps its local hour across the clock changes.

2024 in London: the clocks go forward at 01:00 UTC on Sunday 31 March (01:00 GMT -> 02:00
BST) and back at 01:00 UTC on Sunday 27 October (02:00 BST -> 01:00 GMT).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.base import BaseTrigger

from digest.schedule import slots
from digest.schedule.slots import latest_slot, next_slot, trigger

LONDON = "Europe/London"
T = TypeVar("T")


def utc(text: str) -> datetime:
    """'2024-06-10 07:00' as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# schedule | zone | now | latest slot <= now | next slot > now | case; times in UTC.
# 2024-06-10 is a Monday.
TABLE = """
0 7 * * *    | UTC    | 2024-06-10 06:59   | 2024-06-09 07:00 | 2024-06-10 07:00 | daily, before
0 7 * * *    | UTC    | 2024-06-10 07:00   | 2024-06-10 07:00 | 2024-06-11 07:00 | daily, at it
0 7 * * *    | UTC    | 2024-06-10 07:00:01| 2024-06-10 07:00 | 2024-06-11 07:00 | daily, after
*/5 * * * *  | UTC    | 2024-06-10 07:03:12| 2024-06-10 07:00 | 2024-06-10 07:05 | every 5 minutes
0 9 * * 1    | UTC    | 2024-06-12 12:00   | 2024-06-10 09:00 | 2024-06-17 09:00 | Monday is 1
0 7 * * 0    | UTC    | 2024-06-10 12:00   | 2024-06-09 07:00 | 2024-06-16 07:00 | Sunday is 0
0 7 * * 7    | UTC    | 2024-06-10 12:00   | 2024-06-09 07:00 | 2024-06-16 07:00 | Sunday is 7 too
0 7 * * 1-5  | UTC    | 2024-06-09 12:00   | 2024-06-07 07:00 | 2024-06-10 07:00 | 1-5 on a Sunday
0 7 * * 1-5  | UTC    | 2024-06-14 12:00   | 2024-06-14 07:00 | 2024-06-17 07:00 | 1-5 on a Friday
0 7 * * */2  | UTC    | 2024-06-10 12:00   | 2024-06-09 07:00 | 2024-06-11 07:00 | */2 = 0,2,4,6
0 7 * * 5-7  | UTC    | 2024-06-10 12:00   | 2024-06-09 07:00 | 2024-06-14 07:00 | 5-7: Fri Sat Sun
0 7 * * 1,3  | UTC    | 2024-06-11 12:00   | 2024-06-10 07:00 | 2024-06-12 07:00 | a list 1,3
0 7 * * mon-fri | UTC | 2024-06-09 12:00   | 2024-06-07 07:00 | 2024-06-10 07:00 | names still work
0 7 1 * 1    | UTC    | 2024-08-02 12:00   | 2024-08-01 07:00 | 2024-08-05 07:00 | day or weekday
0 7 29 2 *   | UTC    | 2025-06-10 12:00   | 2024-02-29 07:00 | 2028-02-29 07:00 | leap day
0 7 * * *    | Paris  | 2024-06-10 12:00   | 2024-06-10 05:00 | 2024-06-11 05:00 | non-UTC zone

# London at 07:00 local is 07:00 UTC in winter and 06:00 UTC in summer.
0 7 * * *    | London | 2024-03-30 12:00   | 2024-03-30 07:00 | 2024-03-31 06:00 | spring, eve
0 7 * * *    | London | 2024-03-31 06:30   | 2024-03-31 06:00 | 2024-04-01 06:00 | spring, the day
0 7 * * *    | London | 2024-03-31 05:59   | 2024-03-30 07:00 | 2024-03-31 06:00 | spring, before
0 7 * * *    | London | 2024-10-27 06:30   | 2024-10-26 06:00 | 2024-10-27 07:00 | autumn, the day
0 7 * * *    | London | 2024-10-27 07:00   | 2024-10-27 07:00 | 2024-10-28 07:00 | autumn, at it
0 7 * * 1    | London | 2024-03-31 12:00   | 2024-03-25 07:00 | 2024-04-01 06:00 | weekly 1, spring
0 7 * * 0    | London | 2024-10-27 12:00   | 2024-10-27 07:00 | 2024-11-03 07:00 | weekly 0, autumn
0 7 * * 1-5  | London | 2024-10-27 12:00   | 2024-10-25 06:00 | 2024-10-28 07:00 | 1-5, autumn

# 01:30 local does not happen on 31 March: it fires once, at the jump (02:00 BST), as
# crontab runs it; two skipped times of one schedule fire together, once.
30 1 * * *   | London | 2024-03-31 12:00   | 2024-03-31 01:00 | 2024-04-01 00:30 | skipped time
30 1 * * *   | London | 2024-03-31 00:59   | 2024-03-30 01:30 | 2024-03-31 01:00 | before the jump
0,30 1 * * * | London | 2024-03-31 12:00   | 2024-03-31 01:00 | 2024-04-01 00:00 | both skipped
30 1,2 * * * | London | 2024-03-31 12:00   | 2024-03-31 01:30 | 2024-04-01 00:30 | skipped, then not
# 01:30 local happens twice on 27 October: a fixed time fires the first time only...
30 1 * * *   | London | 2024-10-27 12:00   | 2024-10-27 00:30 | 2024-10-28 01:30 | repeated time
30 1 * * *   | London | 2024-10-27 01:00   | 2024-10-27 00:30 | 2024-10-28 01:30 | between repeats
# ... and an hourly schedule keeps its pace.
0 * * * *    | London | 2024-10-27 01:30   | 2024-10-27 01:00 | 2024-10-27 02:00 | hourly, autumn
0 * * * *    | London | 2024-03-31 00:30   | 2024-03-31 00:00 | 2024-03-31 01:00 | hourly, spring
"""
ZONES = {"UTC": "UTC", "Paris": "Europe/Paris", "London": LONDON}
CASES = [
    [cell.strip() for cell in row.split("|")]
    for row in TABLE.splitlines()
    if row.strip() and not row.startswith("#")
]


@pytest.mark.parametrize(
    ("schedule", "zone", "now", "latest", "following"),
    [case[:5] for case in CASES],
    ids=[case[5] for case in CASES],
)
def test_latest_and_next_slot(
    schedule: str, zone: str, now: str, latest: str, following: str
) -> None:
    timezone = ZONES[zone]
    assert within_seconds(lambda: latest_slot(schedule, timezone, utc(now))) == utc(latest)
    assert within_seconds(lambda: next_slot(schedule, timezone, utc(now))) == utc(following)


def within_seconds(call: Callable[[], T], seconds: float = 10) -> T:
    """Run ``call`` in a thread; fail (instead of hanging the suite) when it loops forever."""
    result: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if errors:
        raise errors[0]
    assert result, f"no answer within {seconds}s: a loop that never ends?"
    return result[0]


def test_slots_are_utc_whatever_zone_now_is_given_in() -> None:
    now = datetime(2024, 6, 10, 9, 0, tzinfo=ZoneInfo("Europe/Paris"))  # 07:00 UTC
    slot = latest_slot("0 7 * * *", "UTC", now)
    assert slot == utc("2024-06-10 07:00")
    assert slot.tzinfo == UTC


@pytest.mark.parametrize("schedule", ["*/20 * * * *", "30 1 * * *", "0 7 * * 1-5", "0 * * * *"])
@pytest.mark.parametrize(
    "start", ["2024-03-30 00:00", "2024-10-26 00:00"], ids=("spring", "autumn")
)
def test_slots_step_forward_through_a_clock_change(schedule: str, start: str) -> None:
    """Every 7 minutes for two days around the change: latest <= now < next, and a slot is
    its own latest."""
    now = utc(start)
    while now < utc(start) + timedelta(days=2):
        latest = within_seconds(partial(latest_slot, schedule, LONDON, now))
        following = within_seconds(partial(next_slot, schedule, LONDON, now))
        assert following is not None
        assert latest <= now < following, now
        assert latest_slot(schedule, LONDON, following) == following
        assert (next_slot(schedule, LONDON, latest) or latest) > latest
        now += timedelta(minutes=7)


def test_a_schedule_that_never_fires_falls_back_to_now() -> None:
    now = utc("2024-06-10 07:03:12.5")
    assert latest_slot("0 7 31 2 *", "UTC", now) == utc("2024-06-10 07:03:12")
    assert next_slot("0 7 31 2 *", "UTC", now) is None


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("0 7 * *", "wrong number of fields"),
        ("0 7 * * 8", "out of range 0-7"),
        ("0 7 * * 5-1", "runs backwards"),
        ("0 7 * * */0", "step"),
        ("0 7 * * funday", "funday"),
        ("61 7 * * *", "61"),
    ],
)
def test_bad_schedules_raise_value_error(schedule: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        trigger(schedule, "UTC")


def test_a_schedule_is_parsed_once_however_often_its_fires_are_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every `fires_at` and every step of the daemon's trigger walks the schedule's fire
    times: the cron is parsed into APScheduler's trigger once, not at each of them."""
    built: list[str] = []

    def counted(schedule: str, timezone: str) -> BaseTrigger:
        built.append(schedule)
        return trigger(schedule, timezone)

    monkeypatch.setattr(slots, "trigger", counted)
    schedule = "17 5 * * 2"  # a schedule no other test asks for
    start = utc("2024-06-10 00:00")  # a Monday
    for day in range(7):
        moment = start + timedelta(days=day, hours=4, minutes=17)  # 05:17 in London (BST)
        assert slots.fires_at(schedule, LONDON, moment) == (day == 1)
    assert next_slot(schedule, "UTC", start) == utc("2024-06-11 05:17")
    assert built == [schedule]
