"""When each digest is sent, in a reader's words, for the sign-up page: "every day at
07:00 (Europe/London)". A reader deciding whether to subscribe asks what they will get and
how often; the page named neither.

Only the schedules people write for a newsletter are put into words (one time of day on
every day, on weekdays, or on named weekdays); any other cron expression is not guessed
at, and the digest is named without a time.
"""

from __future__ import annotations

import re

from digest.config.models import DigestConfig

_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_NAMES = {d[:3].lower(): i for i, d in enumerate(_DAYS)}
_NUMBER = re.compile(r"^\d{1,2}$")


def _day(field: str) -> int | None:
    """One weekday of a cron field (0-7 or a name; 0 and 7 are Sunday), else None."""
    if _NUMBER.match(field) and int(field) <= 7:
        return int(field) % 7
    return _NAMES.get(field.lower())


def _days(field: str) -> str | None:
    """The days a cron weekday field names, in words, or None when not simply put."""
    if field == "*":
        return "every day"
    if field.lower() in ("1-5", "mon-fri"):
        return "every weekday"
    days = [_day(part) for part in field.split(",")]
    if not days or None in days:
        return None
    names = [_DAYS[d] for d in sorted(set(d for d in days if d is not None), key=lambda d: d or 7)]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"every {listed}"


def when_sent(digest: DigestConfig, zone: str) -> str:
    """``digest``'s schedule in words ("every day at 07:00 (Europe/London)"), its ``zone``
    the digest's (``Config.digest_timezone``), or "" when it is not one time on whole days."""
    fields = digest.schedule.split()
    if len(fields) != 5 or fields[2:4] != ["*", "*"]:
        return ""
    minute, hour, _, _, weekday = fields
    days = _days(weekday)
    if not (_NUMBER.match(minute) and _NUMBER.match(hour)) or days is None:
        return ""
    at = f"{days} at {int(hour):02d}:{int(minute):02d}"
    if digest.local_time:
        # Sent at that time in each reader's own zone; one signing up has none yet (the
        # form asks none) and counts in the digest's until they choose theirs.
        return f"{at} in your time zone ({zone} until you choose yours)"
    return f"{at} ({zone})"
