"""Which scheduled slot an edition belongs to: the latest cron fire time at or before now.

An edition is identified by (digest, slot), so running `digest send` twice at 07:05 and
07:40 builds one edition, and a subscriber added at 08:00 receives that same edition.

Schedules follow crontab, not APScheduler, where the two differ: weekdays count from
Sunday = 0 (7 is Sunday too); a day of month and a weekday both given means either one
(``0 7 1 * 1``: the 1st and every Monday); a fixed-time schedule fires once on the day
the clocks go back, although its wall-clock time happens twice; and a fixed time the
clocks skip when they go forward fires at the jump, the first instant after it (02:30 New
York time on 8 March 2026 fires at 03:00 EDT; APScheduler would say 03:30). The daemon's
job runs on these same fire times (``CrontabTrigger``), so it fires once in a repeated
hour, and at the jump.

A local-time digest runs on ``local_time_schedule`` (in UTC, every quarter hour a local time can
fall on) and each run's slot goes to the time zones in which the schedule ``fires_at`` it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import takewhile
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

if TYPE_CHECKING:  # the config package reads schedules with this module: no import circle
    from digest.config import DigestConfig

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
# The furthest a zone's clocks go forward at once: an hour mostly, two at Antarctica/Troll.
_LONGEST_CLOCK_JUMP = timedelta(hours=2)

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
    """Fire times (UTC) at or after ``start``, strictly increasing."""
    cron = trigger(schedule, timezone)
    minute, hour = schedule.split()[:2]
    # crontab's own test: a job with '*' in its minute or hour is a wildcard job, run at
    # the times that happen; a fixed-time job runs once a day whatever the clocks do.
    fixed_time = "*" not in minute and "*" not in hour
    cursor = start
    while True:
        fire = cron.get_next_fire_time(None, cursor)
        if fire is None:
            return
        instant = fire.astimezone(UTC)
        if fixed_time and _skipped(fire):
            # (asked from before the jump only: from after it the cron looks at tomorrow)
            instant = _jump(fire)
        if instant < cursor:
            # APScheduler can answer a time before the one asked for in the hour the clocks go
            # back; step on a minute (the finest cron unit) rather than loop on it.
            cursor = cursor.replace(second=0, microsecond=0) + timedelta(minutes=1)
            continue
        if not (fixed_time and _repeated(fire)):
            yield instant
        # Step in UTC: arithmetic on the zone's wall clock drops ``fold``, so in the hour the
        # clocks go back ``fire + 1s`` would land an hour earlier and return ``fire`` forever.
        cursor = instant + timedelta(seconds=1)


def _repeated(fire: datetime) -> bool:
    """Whether ``fire`` is the second time its wall-clock time happens (the clocks went back)."""
    return fire.replace(fold=0).astimezone(UTC) < fire.astimezone(UTC)


def _skipped(fire: datetime) -> bool:
    """Whether ``fire``'s wall-clock time never happens (the clocks went forward over it)."""
    return fire.astimezone(UTC).astimezone(fire.tzinfo).replace(tzinfo=None) != fire.replace(
        tzinfo=None
    )


def _jump(skipped: datetime) -> datetime:
    """The instant (UTC) the clocks went forward over the wall-clock time ``skipped``.

    Read with the offset after the jump, ``skipped`` is an instant before it; with the
    offset before, one after it (PEP 495's ``fold`` in a gap): the offset changes once in
    between, found to the second.
    """
    zone = skipped.tzinfo
    before = skipped.replace(fold=1).astimezone(UTC)
    after = skipped.replace(fold=0).astimezone(UTC)
    offset = after.astimezone(zone).utcoffset()
    while after - before > timedelta(seconds=1):
        middle = (before + (after - before) / 2).replace(microsecond=0)
        if middle.astimezone(zone).utcoffset() == offset:
            after = middle
        else:
            before = middle
    return after


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
    # A skipped time fires at the instant after the jump, but APScheduler finds it only when
    # asked from before the jump: searching from ``moment`` (03:30 local) looks for tomorrow's.
    fires = _fires(schedule, timezone, moment - _LONGEST_CLOCK_JUMP)
    return next((fire for fire in fires if fire >= moment), None) == moment


class CrontabTrigger(BaseTrigger):
    """The daemon's trigger for a cron schedule: it fires at the schedule's fire times as
    crontab reads them (``_fires``), the times slots are made of, so the job never fires
    at a time that is no slot (APScheduler's own trigger fires a fixed time twice the
    night the clocks go back, and a skipped one an hour after the jump)."""

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


def firing_plan(digest: DigestConfig, service_timezone: str) -> FiringPlan:
    """The digest's firing plan (its zone, else ``service_timezone``, the service's)."""
    zone = digest.timezone or service_timezone
    if digest.local_time:
        return FiringPlan(local_time_schedule(digest.schedule), "UTC", zone, True)
    return FiringPlan(digest.schedule, zone, zone, False)
