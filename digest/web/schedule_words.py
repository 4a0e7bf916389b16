"""When each digest is sent, in a reader's words, for the sign-up page: "every day at
07:00 (Europe/London)". A reader deciding whether to subscribe asks what they will get and
how often; the page named neither.

Only the schedules people write for a newsletter are put into words (one time of day on
every day, on weekdays, or on named weekdays); any other cron expression is not guessed
at, and the digest is named without a time. The words are the page's language (the day
names and the time from Babel's CLDR data, the phrases from ``render.translations``).
"""

from __future__ import annotations

import re
from datetime import time

from babel.dates import format_time, get_day_names

from digest.config.models import DigestConfig
from digest.render.i18n import DEFAULT_LOCALE, Localizer

_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_NAMES = {d[:3].lower(): i for i, d in enumerate(_DAYS)}
_NUMBER = re.compile(r"^\d{1,2}$")


def _day(field: str) -> int | None:
    """One weekday of a cron field (0-7 or a name; 0 and 7 are Sunday), else None."""
    if _NUMBER.match(field) and int(field) <= 7:
        return int(field) % 7
    return _NAMES.get(field.lower())


def _days(field: str, tr: Localizer) -> str | None:
    """The days a cron weekday field names, in words, or None when not simply put."""
    if field == "*":
        return tr.gettext("every day")
    if field.lower() in ("1-5", "mon-fri"):
        return tr.gettext("every weekday")
    days = [_day(part) for part in field.split(",")]
    if not days or None in days:
        return None
    wide = get_day_names("wide", locale=tr.locale)  # 0 is Monday there, Sunday in cron
    chosen = sorted(set(d for d in days if d is not None), key=lambda d: d or 7)
    names = [wide[(d - 1) % 7] for d in chosen]
    listed = names[0]
    if len(names) > 1:
        listed = tr.gettext("{first} and {last}", first=", ".join(names[:-1]), last=names[-1])
    return tr.gettext("every {days}", days=listed)


def when_sent(digest: DigestConfig, zone: str, tr: Localizer | None = None) -> str:
    """``digest``'s schedule in words ("every day at 07:00 (Europe/London)") in ``tr``'s
    language (English by default), its ``zone`` the digest's (``Config.digest_timezone``),
    or "" when it is not one time on whole days."""
    tr = tr or Localizer(DEFAULT_LOCALE)
    fields = digest.schedule.split()
    if len(fields) != 5 or fields[2:4] != ["*", "*"]:
        return ""
    minute, hour, _, _, weekday = fields
    days = _days(weekday, tr)
    if not (_NUMBER.match(minute) and _NUMBER.match(hour)) or days is None:
        return ""
    if int(hour) > 23 or int(minute) > 59:  # not a time of day (cron refuses it too)
        return ""
    clock = format_time(time(int(hour), int(minute)), "HH:mm", locale=tr.locale)
    at = tr.gettext("{days} at {time}", days=days, time=clock)
    if digest.local_time:
        # Sent at that time in each reader's own zone; one signing up has none yet (the
        # form asks none) and counts in the digest's until they choose theirs.
        return tr.gettext(
            "{when} in your time zone ({zone} until you choose yours)", when=at, zone=zone
        )
    return tr.gettext("{when} ({zone})", when=at, zone=zone)
