"""Subscriber input, checked before it reaches the store: addresses and CSV rows.

Bad rows are reported with their line number; good rows are kept.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email

from digest.render.i18n import check_locale

CSV_COLUMNS = ("email", "name", "topics", "timezone", "locale")
# Every status the store writes: an export of everyone imports as it was, suppressions kept.
STATUSES = ("active", "pending", "paused", "unsubscribed", "bounced", "complained")
# Import also reads the ``status`` column that export writes, so an export imports as it was.
_IMPORT_COLUMNS = (*CSV_COLUMNS, "status")
NAME_LIMIT = 200  # characters of a subscriber's name


@dataclass(frozen=True)
class NewSubscriber:
    """One valid row: a normalised address and its optional details."""

    email: str
    name: str | None = None
    topics: tuple[str, ...] = ()
    timezone: str | None = None
    status: str = "active"
    locale: str | None = None


def normalise_email(raw: str) -> str:
    """The address in the one form the store keeps (lower case, ASCII); ValueError says what
    is wrong.

    digest sends without SMTPUTF8, so every address must be ASCII: an internationalised
    domain is kept in its ASCII (punycode) form, which reaches the same mailbox; a local part
    (before the @) that is not ASCII cannot be written any other way, so it is refused.
    """
    address = raw.strip()
    try:
        checked = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        if "@" in address and not address.rpartition("@")[0].isascii():
            raise ValueError(
                f"{address!r} cannot be sent to: the part before the @ has non-ASCII "
                "characters, which needs SMTPUTF8, and digest sends plain SMTP"
            ) from None
        raise ValueError(f"{address!r} is not a valid address: {exc}") from None
    assert checked.ascii_email is not None  # always set when SMTPUTF8 is not allowed
    return checked.ascii_email.lower()


def stored_form(raw: str) -> str:
    """How the store would hold an address someone reports (a provider's bounce, a DSN, the
    admin): ``normalise_email``'s form, or, for one it refuses, the address in lower case
    (a row stored before addresses had to be ASCII is found as it was written)."""
    try:
        return normalise_email(raw)
    except ValueError:
        return raw.strip().lower()


# Characters no name holds: controls (CR, LF, tab, NUL...), line and paragraph separators,
# and the bidi embeddings, overrides and isolates that make a To header read backwards.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

_CONTROL_NAMES = {"\r": "a carriage return", "\n": "a line feed", "\t": "a tab"}


def _unprintable(char: str) -> bool:
    return char in _BIDI or unicodedata.category(char) in ("Cc", "Zl", "Zp")


def check_name(raw: str | None) -> str | None:
    """A subscriber's name, or None for none; ValueError says what is wrong.

    The one door every name comes in by (``subscribers add``, CSV import, the sign-up
    form). The name goes into the To header and the greeting of every email: a line break
    would be a header of its own (the message is then refused), so control characters are
    refused here rather than failing each edition later; one over ``NAME_LIMIT`` characters
    is surely not a name (a CSV column shifted, say).
    """
    name = (raw or "").strip()
    if not name:
        return None
    if len(name) > NAME_LIMIT:
        raise ValueError(
            f"the name {name[:30]!r}... is {len(name)} characters long; a name may have at "
            f"most {NAME_LIMIT}"
        )
    bad = next((c for c in name if _unprintable(c)), None)
    if bad is not None:
        what = _CONTROL_NAMES.get(bad) or unicodedata.name(bad, "a control character")
        raise ValueError(
            f"the name {name[:60]!r} holds U+{ord(bad):04X} ({what}); a name is one line "
            "of printable text"
        )
    return name


def sendable_name(stored: str | None) -> str | None:
    """The name to greet a reader by, or None to write to them without one.

    A name stored before ``check_name`` refused control characters would fail every
    message to its reader; the reader would rather get the email without their name.
    """
    try:
        return check_name(stored)
    except ValueError:
        return None


def check_timezone(raw: str | None) -> str | None:
    """An IANA time zone name, or None for none; ValueError says what is wrong."""
    if not raw:
        return None
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {raw!r}; use a name like 'Europe/Paris'") from None
    return raw


def check_subscriber_locale(raw: str | None) -> str | None:
    """A locale code such as 'fr' or 'pt_BR', or None for none; ValueError says what is wrong."""
    return check_locale(raw) if raw else None


def parse_csv(text: str) -> tuple[list[NewSubscriber], list[tuple[int, str]]]:
    """Rows of a subscriber CSV (header optional: email,name,topics,timezone,locale), problems.

    ``topics`` is a ``;``-separated list; a ``status`` column (as export writes it) may
    hold any of ``STATUSES``. Problems are (line number, what is wrong).
    """
    good: list[NewSubscriber] = []
    problems: list[tuple[int, str]] = []
    seen: set[str] = set()
    reader = csv.reader(io.StringIO(text))
    columns: tuple[str, ...] = CSV_COLUMNS
    first_row = True
    end = 0  # where the previous row ended: a quoted cell may span lines
    for row in reader:
        line, end = end + 1, reader.line_num
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if first_row and "email" in (c.lower() for c in cells):
            first_row = False
            unknown = [c for c in cells if c.lower() not in _IMPORT_COLUMNS]
            if unknown:
                problems.append(
                    (line, f"unknown columns {unknown}; use {', '.join(_IMPORT_COLUMNS)}")
                )
            columns = tuple(c.lower() for c in cells)
            continue
        first_row = False
        record = dict(zip(columns, cells, strict=False))
        try:
            email = normalise_email(record.get("email", ""))
            name = check_name(record.get("name"))
            tz = check_timezone(record.get("timezone"))
            locale = check_subscriber_locale(record.get("locale"))
            status = record.get("status") or "active"
            if status not in STATUSES:
                raise ValueError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
        except ValueError as exc:
            problems.append((line, str(exc)))
            continue
        if email in seen:
            problems.append((line, f"{email} appears twice in the file; the first row is kept"))
            continue
        seen.add(email)
        topics = tuple(t.strip() for t in record.get("topics", "").split(";") if t.strip())
        good.append(NewSubscriber(email, name, topics, tz, status, locale))
    return good, problems


def to_csv(rows: list[tuple[str, str | None, str, str | None, str | None, str]]) -> str:
    """CSV of (email, name, topics, timezone, locale, status) rows, with a header, for export."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_IMPORT_COLUMNS)
    for email, name, topics, tz, locale, status in rows:
        writer.writerow(
            [email, name or "", topics.replace(",", ";"), tz or "", locale or "", status]
        )
    return out.getvalue()
