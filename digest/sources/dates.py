"""Dates as sources write them: ISO 8601 (bare dates too) and non-English RFC 822.

``iso_date`` reads the ISO dates of JSON Feeds, news sitemaps and pages' metadata, one
rule for all three. Feeds from Brazil, Portugal, Spain, France, Germany and Italy often write
``Seg, 24 Set 2018 19:42:40 -0300``. feedparser only knows English names and leaves such a
date unparsed; without a date the article would count as published when first seen.

``numeric_zone`` writes the zone names feedparser and ``email.utils`` do not know (they know
the US ones) as offsets: ``10:00 CEST`` is 08:00 UTC, not 10:00, which would make a
German, French or Japanese article look hours fresher than it is.
"""

from __future__ import annotations

import re
import time
import unicodedata
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from feedparser.datetimes import _parse_date as feedparser_date
from feedparser.datetimes import registerDateHandler

_ENGLISH = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Month abbreviations (accents removed, lower case) -> month number. No abbreviation means
# two different months across these languages, so one table serves them all.
_MONTHS = {
    **{m.lower(): n for n, m in enumerate(_ENGLISH, 1)},
    # Portuguese
    "fev": 2, "abr": 4, "mai": 5, "ago": 8, "set": 9, "out": 10, "dez": 12,
    # Spanish
    "ene": 1, "sept": 9, "dic": 12,
    # French
    "janv": 1, "fevr": 2, "mars": 3, "avr": 4, "juin": 6, "juil": 7, "juillet": 7, "aout": 8,
    # German
    "mrz": 3, "okt": 10,
    # Italian
    "gen": 1, "mag": 5, "giu": 6, "lug": 7, "ott": 10,
}  # fmt: skip

# Zone names news feeds write beyond the US ones the parsers know, as offsets. Only names
# with one meaning in news: IST (India, Ireland, Israel), CST (US, China) and AST (Atlantic,
# Arabia) keep the parsers' reading.
_ZONES = {
    "WET": "+0000", "WEZ": "+0000", "WEST": "+0100", "WESZ": "+0100", "BST": "+0100",
    "CET": "+0100", "MEZ": "+0100", "CEST": "+0200", "MESZ": "+0200",
    "EET": "+0200", "OEZ": "+0200", "EEST": "+0300", "OESZ": "+0300", "MSK": "+0300",
    "WAT": "+0100", "SAST": "+0200", "EAT": "+0300", "PKT": "+0500", "NPT": "+0545",
    "ICT": "+0700", "WIB": "+0700", "HKT": "+0800", "SGT": "+0800", "PHT": "+0800",
    "AWST": "+0800", "JST": "+0900", "KST": "+0900", "ACST": "+0930", "ACDT": "+1030",
    "AEST": "+1000", "AEDT": "+1100", "NZST": "+1200", "NZDT": "+1300",
    "HST": "-1000", "AKST": "-0900", "AKDT": "-0800", "NST": "-0330", "NDT": "-0230",
    "BRT": "-0300", "ART": "-0300", "CLT": "-0400", "CLST": "-0300",
}  # fmt: skip
_TRAILING_ZONE = re.compile(r"(?<=[\d\s])([A-Za-z]{3,4})\s*$")


# asctime order, as strftime("%c") writes it: "Wed Jun 10 09:41:01 2026".
_ASCTIME = re.compile(
    r"^[A-Za-z]{3}\s+([A-Za-z]{3})\s+(\d{1,2})\s+(\d{1,2}:\d{2}(?::\d{2})?)\s+(\d{4})$"
)


def numeric_zone(value: str) -> str:
    """``value`` with a trailing zone name of ``_ZONES`` written as its offset; else as is.

    An asctime-ordered date is rewritten in RFC 822 order: with an offset after its year,
    feedparser would read the offset as the year.
    """
    match = _TRAILING_ZONE.search(value)
    if match is None or (offset := _ZONES.get(match[1].upper())) is None:
        return value
    head = value[: match.start(1)].strip()
    if asctime := _ASCTIME.match(head):
        month, day, clock, year = asctime.groups()
        head = f"{day} {month} {year} {clock}"
    return f"{head} {offset}"


def zoned_date_handler(value: str) -> time.struct_time | None:
    """A feedparser date handler (registered first): a date ending in a zone name of
    ``_ZONES`` is read by feedparser's own handlers with the offset written instead."""
    zoned = numeric_zone(value)
    if zoned == value:
        return None
    parsed = feedparser_date(zoned)
    # A reading far from any news date means the rewrite misled a handler: no date beats
    # a wrong one (the article then counts as published when first seen).
    return parsed if parsed is not None and 1990 <= parsed.tm_year <= 2200 else None


# [weekday,] day month year hh:mm[:ss] [zone]; the weekday is ignored, whatever its language.
_DATE = re.compile(
    r"^\s*(?:[^\W\d]+\.?,?\s+)?(\d{1,2})\.?\s+([^\W\d]+)\.?\s+(\d{4})\s+"
    r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([+-]\d{4}|[A-Za-z]{1,5})?\s*$"
)


def parse_localised_date(value: str) -> datetime | None:
    """An RFC 822-style date with a month name in one of several languages, in UTC; else None."""
    match = _DATE.match(value or "")
    if match is None:
        return None
    day, month_name, year, hour, minute, second, zone = match.groups()
    month = _MONTHS.get(_fold(month_name)) or _MONTHS.get(_fold(month_name)[:3])
    if month is None:
        return None
    zone = _ZONES.get((zone or "").upper(), zone)
    english = (
        f"{day} {_ENGLISH[month - 1]} {year} {hour}:{minute}:{second or '00'} {zone or '+0000'}"
    )
    try:
        parsed = parsedate_to_datetime(english)
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):  # OverflowError: past year 9999 in UTC
        return None


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def iso_date(value: object, now: datetime | None) -> datetime | None:
    """An ISO 8601 date in UTC, never later than ``now``; None when unreadable or out of range.

    A bare date ("2026-11-26", as sitemaps and pages often give) is some moment of that
    day: it becomes the middle of the part of the day already past (noon of a past day,
    or halfway to ``now`` today), which is within 12 hours of the true time. Midnight
    would put an evening article a day before its story, and outside tomorrow morning's
    window.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    # A date at the edge of what datetime holds ("9999-12-31", "0001-01-01T00:00+01:00")
    # overflows when moved to UTC or to the day's end: it is no date, like an unreadable one,
    # so one odd item never fails its source.
    try:
        parsed = datetime.fromisoformat(text)
        parsed = parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        if _BARE_DATE.fullmatch(text):
            day_end = parsed + timedelta(days=1)
            known = min(day_end, now) if now is not None else day_end
            parsed += max(known - parsed, timedelta(0)) / 2
    except (ValueError, OverflowError):
        return None
    return min(parsed, now) if now is not None else parsed


_BARE_DATE = re.compile(r"\d{4}-?\d{2}-?\d{2}")


registerDateHandler(zoned_date_handler)  # for feedparser.parse and the fast path alike
