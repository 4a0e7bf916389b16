"""Which scheduled slot an edition belongs to: the latest cron fire time at or before now.

An edition is identified by (digest, slot), so running `digest send` twice at 07:05 and
07:40 builds one edition, and a subscriber added at 08:00 receives that same edition.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

_SPANS = (
    timedelta(hours=1),
    timedelta(days=1),
    timedelta(days=8),
    timedelta(days=32),
    timedelta(days=367),
    timedelta(days=366 * 5),
)


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DAY_PART = re.compile(r"^(\*|\d+)(?:-(\d+))?(?:/(\d+))?$")


def trigger(schedule: str, timezone: str) -> CronTrigger:
    """The APScheduler trigger for a standard five-field cron expression in a time zone.

    APScheduler 3 numbers weekdays from Monday = 0, crontab from Sunday = 0 (APScheduler
    issue 286); numeric weekdays are translated to names so '1-5' means Monday to Friday.
    """
    fields = schedule.split()
    if len(fields) != 5:
        raise ValueError(f"wrong number of fields; got {len(fields)}, expected 5")
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_crontab_weekdays(weekday),
        timezone=ZoneInfo(timezone),
    )


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
        for number in range(start, end + 1, int(step or 1)):
            name = _DAY_NAMES[number % 7]
            if name not in names:
                names.append(name)
    return ",".join(names)


def latest_slot(schedule: str, timezone: str, now: datetime) -> datetime:
    """The newest fire time <= ``now`` (UTC); falls back to ``now`` for a cron that never fired."""
    cron = trigger(schedule, timezone)
    for span in _SPANS:
        fire = cron.get_next_fire_time(None, now - span)
        if fire is None or fire > now:
            continue
        while True:
            following = cron.get_next_fire_time(fire, fire + timedelta(seconds=1))
            if following is None or following > now:
                return fire.astimezone(UTC)
            fire = following
    return now.astimezone(UTC).replace(microsecond=0)


def next_slot(schedule: str, timezone: str, now: datetime) -> datetime | None:
    """The next fire time after ``now`` (UTC), for status displays."""
    fire = trigger(schedule, timezone).get_next_fire_time(None, now + timedelta(seconds=1))
    return fire.astimezone(UTC) if fire else None
