"""Which scheduled slot an edition belongs to: the latest cron fire time at or before now.

An edition is identified by (digest, slot), so running `digest send` twice at 07:05 and
07:40 builds one edition, and a subscriber added at 08:00 receives that same edition.

Schedules follow crontab, not APScheduler, where the two differ: weekdays count from
Sunday = 0 (7 is Sunday too); a day of month and a weekday both given means either one
(``0 7 1 * 1``: the 1st and every Monday).

Across the clock changes they follow cronie (Vixie cron's successor, the cron of most
Linux systems) exactly. cronie tells two kinds of job apart by the first character of
the minute and hour fields (entry.c's ``MIN_STAR``/``HR_STAR``; cron.c's ``find_jobs``):

- a *wildcard* job has a minute or an hour field starting with '*' (``*/15 * * * *``,
  ``0 */2 * * *``, and ``*/30 2 * * *`` too: its minute field starts with '*'). It runs at
  the wall-clock times that happen and match: none in the hour the clocks skip (``0 */2``
  does not run at 03:00 the night New York's clocks go from 02:00 to 03:00, nor does
  ``*/30 2`` run that night at all), and twice in an hour they repeat.
- a *fixed-time* job is any other (``30 2 * * *``, ``15 1-3 * * *``, ``0,30 2``, and
  ``0 0-23/1``: only a field's first character counts). It runs once at a wall-clock time
  the clocks repeat (the first time), and when the clocks go forward over one or more of
  its times it runs once at the jump, the first instant after it (02:30 New York time on
  8 March 2026 fires at 03:00 EDT; ``15 1-3`` fires at 01:15, 03:00 and 03:15 that night).
  cronie starts such a job once per skipped minute it names, one after the other at the
  jump; a slot is an instant, so that is one slot.

cronie reads a jump forward of more than 3 hours, or back by more than 3 hours, as the
clock being set: it catches nothing up, and runs every job, fixed-time ones too, at the
times that come (again); a jump forward of 5 minutes or less as a late wake-up: it runs
every job whose minutes it missed. No zone's daylight saving does either today; the rules
are kept for the zones that did. The daemon's job runs on these same fire times
(``CrontabTrigger``).

A local-time digest runs on ``local_time_schedule`` (in UTC, every quarter hour a local time can
fall on) and each run's slot goes to the time zones in which the schedule ``fires_at`` it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import takewhile
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

_SPANS = (
    timedelta(hours=1),
    timedelta(days=1),
    timedelta(days=8),
    timedelta(days=32),
    timedelta(days=367),
    timedelta(days=366 * 5),
)

# Zone offsets from UTC, daylight saving included, are whole multiples of this.
_OFFSET_STEP_MINUTES = 15
# cronie (cron.c) catches up fixed-time jobs a jump forward skipped when the jump is longer
# than this and at most the longest; longer, it takes the clock for set and runs nothing
# skipped; shorter, for a late wake-up and runs every job skipped.
_CATCH_UP_SHORTEST = timedelta(minutes=5)
_CATCH_UP_LONGEST = timedelta(hours=3)
# How far apart the offset is compared when looking for a jump: less than any two changes.
_OFFSET_PROBE = timedelta(hours=6)

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DAY_PART = re.compile(r"^(\*|\d+)(?:-(\d+))?(?:/(\d+))?$")


def trigger(schedule: str, timezone: str) -> BaseTrigger:
    """The APScheduler trigger for a standard five-field cron expression in a time zone.

    APScheduler 3 numbers weekdays from Monday = 0, crontab from Sunday = 0 (APScheduler
    issue 286); numeric weekdays are translated to names so '1-5' means Monday to Friday.
    """
    fields = schedule.split()
    if len(fields) != 5:
        raise ValueError(f"wrong number of fields; got {len(fields)}, expected 5")
    minute, hour, day, month, weekday = fields
    zone = ZoneInfo(timezone)
    weekdays = _crontab_weekdays(weekday)

    def cron(day: str, weekdays: str) -> CronTrigger:
        return CronTrigger(
            minute=minute, hour=hour, day=day, month=month, day_of_week=weekdays, timezone=zone
        )

    if day.startswith("*") or weekday.startswith("*"):
        return cron(day, weekdays)
    # crontab fires when either restricted day field matches; APScheduler wants both.
    return OrTrigger([cron(day, "*"), cron("*", weekdays)])


@functools.lru_cache(maxsize=256)
def _wall_trigger(schedule: str) -> BaseTrigger:
    """``trigger`` on wall-clock time (read as UTC: no clock changes), built once per
    schedule: ``_fires`` runs at every fire time asked for (each ``fires_at``, each step of
    the daemon's trigger), and need not parse the cron again each time. Shared, so read
    only: APScheduler's cron and combining triggers change no state of theirs in
    ``get_next_fire_time``, the one method called on it (``_next_wall_match``); never hand
    it to a scheduler."""
    return trigger(schedule, "UTC")


def _crontab_weekdays(field: str) -> str:
    if field == "*":
        return field
    names: list[str] = []
    for part in field.split(","):
        match = _DAY_PART.match(part)
        if not match:
            names.append(part)  # names such as 'mon-fri' mean the same in both
            continue
        first, last, step = match.groups()
        start, end = (0, 6) if first == "*" else (int(first), int(last or first))
        if start > 7 or end > 7:
            raise ValueError(f"weekday {part!r} is out of range 0-7")
        if start > end:
            raise ValueError(f"weekday range {part!r} runs backwards; write it low-high, as 1-5")
        if step is not None and int(step) == 0:
            raise ValueError(f"weekday step in {part!r} is 0; use a step of 1 or more")
        for number in range(start, end + 1, int(step or 1)):
            name = _DAY_NAMES[number % 7]
            if name not in names:
                names.append(name)
    return ",".join(names)


def _fires(schedule: str, timezone: str, start: datetime) -> Iterator[datetime]:
    """Fire times (UTC) at or after ``start``, strictly increasing, as cronie runs the job.

    The zone's clocks are walked stretch by stretch, each a span of one UTC offset, in
    which wall-clock time runs one to one with UTC; the cron is matched against wall-clock
    times by the same trigger read in UTC, where every time happens once. APScheduler's
    own zone arithmetic is not trusted across a change: it moves a time the clocks skip
    into a later hour (``15 1-3`` then loses its fire at the jump, ``0 */2`` gains one at
    03:00), and can pass over the next day's fire on Lord Howe Island.
    """
    wall_cron = _wall_trigger(schedule)
    zone = ZoneInfo(timezone)
    fixed_time = _fixed_time(schedule)
    cursor = _ceil_second(start.astimezone(UTC))  # fires fall on whole minutes
    # Walk from a while before ``start``: a fixed-time job asked from within a repeated hour
    # must know which of its wall-clock times have already happened.
    stretch = cursor - _CATCH_UP_LONGEST
    offset = _offset(zone, stretch)
    seen: datetime | None = None  # the wall-clock time the clocks went back from
    while True:
        wall = _wall(max(stretch, cursor), offset)
        if fixed_time and seen is not None and seen > wall:
            wall = seen  # these times happened before the clocks went back: not again
        match = _next_wall_match(wall_cron, wall)
        if match is None:
            return
        change = _next_change(zone, stretch, _instant(match, offset))
        if change is None:
            fire = _instant(match, offset)
            yield fire
            cursor = fire + timedelta(seconds=1)
            stretch = fire  # the offset holds until here: look for the next change from it
            continue
        at, later = change
        left = _wall(at, offset)  # the wall-clock time the clocks change at
        shift = later - offset
        if shift > timedelta(0):
            skipped = _next_wall_match(wall_cron, left)
            if (
                at >= cursor
                and skipped is not None
                and skipped < left + shift
                and _catches_up(fixed_time, shift)
            ):
                yield at
                cursor = at + timedelta(seconds=1)
        elif -shift <= _CATCH_UP_LONGEST:
            seen = left if seen is None else max(seen, left)
        else:
            seen = None  # cronie takes a long jump back for the clock set: runs all again
        stretch, offset = at, later


def _catches_up(fixed_time: bool, shift: timedelta) -> bool:
    """Whether cronie runs a job whose time the clocks skipped going forward by ``shift``,
    at the jump (cron.c's main loop): a jump of a few minutes it takes for a late wake-up
    and runs every job missed; a longer one up to 3 hours for daylight saving and runs the
    fixed-time jobs missed; a longer one still for the clock being set, and runs none."""
    if shift <= _CATCH_UP_SHORTEST:
        return True
    return fixed_time and shift <= _CATCH_UP_LONGEST


def _fixed_time(schedule: str) -> bool:
    """cronie's test (entry.c sets ``MIN_STAR``/``HR_STAR`` on a field's first character):
    a job whose minute or hour field starts with '*' ('*', '*/15') is a wildcard job; any
    other, ranges and lists included ('0-23/1', '15 1-3'), is a fixed-time job."""
    minute, hour = schedule.split()[:2]
    return not (minute.startswith("*") or hour.startswith("*"))


def _ceil_second(moment: datetime) -> datetime:
    if moment.microsecond:
        return moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    return instant.astimezone(zone).utcoffset() or timedelta(0)


def _wall(instant: datetime, offset: timedelta) -> datetime:
    """The wall-clock time (naive) of ``instant`` on a clock ``offset`` ahead of UTC."""
    return (instant + offset).replace(tzinfo=None)


def _instant(wall: datetime, offset: timedelta) -> datetime:
    """The instant (UTC) a clock ``offset`` ahead of UTC shows ``wall``."""
    return wall.replace(tzinfo=UTC) - offset


def _next_wall_match(wall_cron: BaseTrigger, wall: datetime) -> datetime | None:
    """The first wall-clock time (naive) at or after ``wall`` the cron names."""
    found = wall_cron.get_next_fire_time(None, wall.replace(tzinfo=UTC))
    return None if found is None else found.replace(tzinfo=None)


def _next_change(
    zone: ZoneInfo, start: datetime, end: datetime
) -> tuple[datetime, timedelta] | None:
    """The first instant in (``start``, ``end``] the zone's offset changes at, and the new
    offset. Offsets are compared a few hours apart (zones change them months apart), and
    a change found to the second in between (they fall on whole seconds)."""
    before, offset = start, _offset(zone, start)
    while before < end:
        after = min(before + _OFFSET_PROBE, end)
        later = _offset(zone, after)
        if later != offset:
            low, high = before, after
            while high - low > timedelta(seconds=1):
                middle = low + timedelta(seconds=max(1, (high - low) // timedelta(seconds=2)))
                if _offset(zone, middle) == later:
                    high = middle
                else:
                    low = middle
            return high, later
        before = after
    return None


def latest_slot(schedule: str, timezone: str, now: datetime) -> datetime:
    """The newest fire time <= ``now`` (UTC); falls back to ``now`` for a cron that never fired."""
    for span in _SPANS:
        latest = None
        for fire in _fires(schedule, timezone, now - span):
            if fire > now:
                break
            latest = fire
        if latest is not None:
            return latest
    return now.astimezone(UTC).replace(microsecond=0)


def slots_between(schedule: str, timezone: str, start: datetime, end: datetime) -> list[datetime]:
    """The fire times in [``start``, ``end``] (UTC), oldest first."""
    return list(takewhile(lambda fire: fire <= end, _fires(schedule, timezone, start)))


def next_slot(schedule: str, timezone: str, now: datetime) -> datetime | None:
    """The next fire time after ``now`` (UTC), for status displays."""
    return next(_fires(schedule, timezone, now + timedelta(seconds=1)), None)


def local_time_schedule(schedule: str) -> str:
    """The cron (in UTC) a local-time digest runs on: every hour, at each minute past the
    hour when the schedule's local time can happen somewhere.

    Every zone's offset from UTC, daylight saving included, is a whole number of quarter
    hours (Kolkata +5:30, Kathmandu +5:45, St John's -3:30), so a local 07:00 happens in UTC
    at the schedule's minute or 15, 30 or 45 minutes past it; a job on the minute alone never
    reaches those zones. Each of these quarter-hour runs is its own slot.
    """
    minutes = {
        (minute + offset) % 60
        for minute in _minutes(schedule.split()[0])
        for offset in range(0, 60, _OFFSET_STEP_MINUTES)
    }
    return f"{','.join(str(m) for m in sorted(minutes))} * * * *"


def _minutes(field: str) -> list[int]:
    """The minutes past the hour a crontab minute field names ('*/20' -> 0, 20, 40)."""
    start = datetime(2000, 1, 1, tzinfo=UTC)
    fires = _fires(f"{field} * * * *", "UTC", start)
    return [f.minute for f in takewhile(lambda f: f < start + timedelta(hours=1), fires)]


def fires_at(schedule: str, timezone: str, moment: datetime) -> bool:
    """True when the schedule, read in ``timezone``, fires exactly at ``moment``.

    As for an ordinary digest, a fixed-time schedule fires the first time only when its
    wall-clock time happens twice (the clocks go back), so a local-time subscriber gets one
    edition that day; a time the clocks skip fires at the jump (02:30 New York time on the
    night the clocks go forward fires at 03:00).
    """
    return next(_fires(schedule, timezone, moment), None) == moment


class CrontabTrigger(BaseTrigger):
    """The daemon's trigger for a cron schedule: it fires at the schedule's fire times as
    cronie reads them (``_fires``), the times slots are made of, so the job never fires
    at a time that is no slot (APScheduler's own trigger fires a fixed time twice the
    night the clocks go back, a skipped one an hour after the jump, and a wildcard hour
    at a time the cron does not name)."""

    __slots__ = ("schedule", "timezone")

    def __init__(self, schedule: str, timezone: str) -> None:
        trigger(schedule, timezone)  # a bad schedule fails here, not at the first fire
        self.schedule = schedule
        self.timezone = timezone

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The first fire after ``previous_fire_time`` (missed ones included, as for
        APScheduler's cron trigger), else the first at or after ``now``."""
        start = now
        if previous_fire_time is not None:
            start = min(now, previous_fire_time + timedelta(microseconds=1))
        return next(_fires(self.schedule, self.timezone, start.astimezone(UTC)), None)

    def __str__(self) -> str:
        return f"crontab[{self.schedule!r} in {self.timezone}]"

    def __repr__(self) -> str:
        return f"<CrontabTrigger ({self.schedule!r}, timezone={self.timezone!r})>"


@dataclass(frozen=True)
class FiringPlan:
    """When a digest fires: the cron its job runs on and the zone that cron is read in.

    The one answer `digest status`, the daemon's job, the slot an edition belongs to and the
    console's next run all take, so they cannot disagree. An ordinary digest fires on its
    schedule in its own zone (else the service's); a local-time digest fires every quarter
    hour in UTC on which the schedule's local time can happen (``local_time_schedule``), and
    each fire's readers are the zones whose local time it is (``fires_at``).
    """

    schedule: str
    timezone: str
    zone: str  # the digest's own zone: shown times, and readers without a zone of their own
    local_time: bool

    def trigger(self) -> BaseTrigger:
        """The APScheduler trigger of the digest's job: it fires at each slot."""
        return CrontabTrigger(self.schedule, self.timezone)

    def slot(self, now: datetime) -> datetime:
        """The slot an edition built at ``now`` belongs to: the latest fire at or before it."""
        return latest_slot(self.schedule, self.timezone, now)

    def next_fire(self, now: datetime) -> datetime | None:
        """The next fire after ``now`` (UTC); None for a cron that never fires again."""
        return next_slot(self.schedule, self.timezone, now)

    def slots_between(self, start: datetime, end: datetime) -> list[datetime]:
        """The fires in [``start``, ``end``] (UTC), oldest first."""
        return slots_between(self.schedule, self.timezone, start, end)
