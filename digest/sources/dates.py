"""Dates feedparser cannot read: RFC 822 dates written with non-English month names.

Feeds from Brazil, Portugal, Spain, France, Germany and Italy often write
``Seg, 24 Set 2018 19:42:40 -0300``. feedparser only knows English names and leaves such a
date unparsed; without a date the article would count as published when first seen.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

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
    english = (
        f"{day} {_ENGLISH[month - 1]} {year} {hour}:{minute}:{second or '00'} {zone or '+0000'}"
    )
    try:
        parsed = parsedate_to_datetime(english)
    except (TypeError, ValueError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))
