"""Subscriber input, checked before it reaches the store: addresses and CSV rows.

Bad rows are reported with their line number; good rows are kept.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import re
import unicodedata
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from email_validator import EmailNotValidError, validate_email

from digest.config.models import check_timezone
from digest.render.i18n import check_locale
from digest.store.subscribers import ImportCounts

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
    local, _, domain = address.rpartition("@")
    if len(local) <= 64 and len(address) <= 254 and _PLAIN_LOCAL.fullmatch(local):
        # The common case, as fast as an import of a million rows needs: a plain ASCII
        # local part, which validate_email keeps as it is, and a domain checked once.
        ascii_domain = _checked_domain(domain)
        if ascii_domain is not None:
            return f"{local}@{ascii_domain}".lower()
    try:
        checked = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        if "@" in address and not address.rpartition("@")[0].isascii():
            raise ValueError(
                f"{address!r} cannot be sent to: the part before the @ has non-ASCII "
                "characters, which needs SMTPUTF8, and digest sends plain SMTP"
            ) from exc
        raise ValueError(f"{address!r} is not a valid address: {exc}") from exc
    assert checked.ascii_email is not None  # always set when SMTPUTF8 is not allowed
    return checked.ascii_email.lower()


# A dot-atom of RFC 5322 letters, at most 64 characters: what validate_email accepts as a
# local part and gives back unchanged.
_PLAIN_LOCAL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
)


@functools.lru_cache(maxsize=4096)
def _checked_domain(domain: str) -> str | None:
    """The domain in the ASCII form validate_email gives, or None when it refuses it (the
    full check then says why); an import's rows share a few domains."""
    try:
        checked = validate_email(f"a@{domain}", check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    return checked.ascii_domain


def stored_form(raw: str) -> str:
    """How the store would hold an address someone reports (a provider's bounce, a DSN, the
    admin): ``normalise_email``'s form, or, for one it refuses, the address in lower case
    (a row stored before addresses had to be ASCII is found as it was written)."""
    try:
        return normalise_email(raw)
    except ValueError:
        return raw.strip().lower()


# Characters no name holds: controls (CR, LF, tab, NUL...), line and paragraph separators,
# the bidi embeddings, overrides and isolates that make a To header read backwards, and lone
# surrogates (a byte that is not UTF-8 on the command line), which no database or message holds.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

_CONTROL_NAMES = {"\r": "a carriage return", "\n": "a line feed", "\t": "a tab"}


def _unprintable(char: str) -> bool:
    return char in _BIDI or unicodedata.category(char) in ("Cc", "Zl", "Zp", "Cs")


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
    # str.isprintable is False for every character _unprintable names (and a few more):
    # the scan runs only then, which a million-row import notices.
    bad = None if name.isprintable() else next((c for c in name if _unprintable(c)), None)
    if bad is not None:
        what = _CONTROL_NAMES.get(bad) or unicodedata.name(bad, "")
        if not what:
            surrogate = unicodedata.category(bad) == "Cs"
            what = "a byte that is not UTF-8 text" if surrogate else "a control character"
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


def check_subscriber_timezone(raw: str | None) -> str | None:
    """An IANA time zone name, or None for none; ValueError says what is wrong."""
    return check_timezone(raw, otherwise="use a name like 'Europe/Paris'") if raw else None


def check_subscriber_locale(raw: str | None) -> str | None:
    """A locale code such as 'fr' or 'pt_BR', or None for none; ValueError says what is wrong."""
    return check_locale(raw) if raw else None


class CsvHeaderError(ValueError):
    """A header row digest cannot map: the whole file is refused, since reading its columns
    by position would put one column's values into another (a department as a topic)."""

    def __init__(self, line: int, what: str) -> None:
        super().__init__(what)
        self.line = line


def accepted_columns() -> str:
    """The header names import reads, for a message or --help."""
    return "; ".join(
        f"{column.replace('_', ' ')} (or {', '.join(rest)})" if rest else column
        for column, (_, *rest) in _SPELLINGS.items()
    )


def parse_csv(
    text: str, topics: Collection[str] | None = None
) -> tuple[list[NewSubscriber], list[tuple[int, str]]]:
    """Rows of a subscriber CSV (header optional: email,name,topics,timezone,locale), problems.

    ``read_csv`` over a whole text, with an address given twice reported on its later line.
    Problems are (line number, what is wrong).
    """
    good: list[NewSubscriber] = []
    problems: list[tuple[int, str]] = []
    seen: set[str] = set()
    for line, row in read_csv(io.StringIO(text), topics):
        if isinstance(row, str):
            problems.append((line, row))
        elif row.email in seen:
            problems.append((line, twice(row.email)))
        else:
            seen.add(row.email)
            good.append(row)
    return good, problems


def twice(email: str) -> str:
    """The problem of a row whose address an earlier row of the same file has."""
    return f"{email} appears twice in the file; the first row is kept"


def read_csv(
    lines: Iterable[str], topics: Collection[str] | None = None
) -> Iterator[tuple[int, NewSubscriber | str]]:
    """(line number, a valid row or what is wrong with it) for each row of a subscriber CSV.

    One row at a time, so a file of a million people is read in flat memory; the caller
    judges an address given twice (``twice``). The header's names are matched in any case
    and in the spellings other tools export (``Email Address``, ``Full Name``, ``First
    Name`` and ``Last Name``, ``Time zone``...); one it does not know raises CsvHeaderError
    before any row is given. Cells are separated by commas, semicolons or tabs, whichever
    the file uses. ``topics`` is a ``;``-separated list, each one of ``topics`` when given;
    a ``status`` column (as export writes it) may hold any of ``STATUSES``.
    """
    source = iter(lines)
    ahead: list[str] = []  # the lines read to find the separator, given to csv again
    first = ""
    for ln in source:
        ahead.append(ln)
        if ln.strip() and not ln.lstrip().startswith("#"):
            first = ln.rstrip("\r\n")
            break
    reader = csv.reader(itertools.chain(ahead, source), delimiter=_delimiter(first))
    columns: tuple[str, ...] = CSV_COLUMNS
    first_row = True
    end = 0  # where the previous row ended: a quoted cell may span lines
    for row in reader:
        line, end = end + 1, reader.line_num
        cells = [_unguarded(c.strip()) for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if first_row and _is_header(cells):
            first_row = False
            columns = _header(line, cells)
            continue
        first_row = False
        try:
            yield line, _person(dict(zip(columns, cells, strict=False)), topics)
        except ValueError as exc:
            yield line, str(exc)


def _person(record: dict[str, str], topics: Collection[str] | None) -> NewSubscriber:
    """One row's person; ValueError says what is wrong."""
    if not record.get("name"):
        record["name"] = " ".join(filter(None, (record.get("first_name"), record.get("last_name"))))
    chosen = tuple(t.strip() for t in record.get("topics", "").split(";") if t.strip())
    email = normalise_email(record.get("email", ""))
    name = check_name(record.get("name"))
    tz = check_subscriber_timezone(record.get("timezone"))
    locale = check_subscriber_locale(record.get("locale"))
    if topics is not None:
        check_topics(chosen, topics)
    status = record.get("status") or "active"
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    return NewSubscriber(email, name, chosen, tz, status, locale)


def csv_columns(text: str) -> tuple[bool, list[tuple[str, str]]]:
    """How import reads a file's columns: whether its first row is a header, and each
    (header cell or position, column it fills; "" for a cell it ignores). CsvHeaderError as
    ``parse_csv`` raises it. What the console shows before an import."""
    first = next(
        (ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), ""
    )
    rows = csv.reader(io.StringIO(text), delimiter=_delimiter(first))
    for line, row in enumerate(rows, start=1):
        cells = [_unguarded(c.strip()) for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if _is_header(cells):
            return True, list(zip(cells, _header(line, cells), strict=True))
        return False, [(f"column {i}", c) for i, c in enumerate(CSV_COLUMNS[: len(cells)], 1)]
    return False, []


def import_subscribers(
    store: _ImportStore,
    rows: Sequence[NewSubscriber],
    chunk: int = 1000,
    by: str = "an import",
) -> tuple[int, int, list[str]]:
    """Add the rows nobody has yet, ``chunk`` rows a lookup and an insert: (added, already
    active, addresses that left earlier, the first thousand of them).

    Someone who unsubscribed, bounced or complained is not re-added: an import is not their
    consent. A row with another status than active keeps it (an export read back). ``rows``
    hold each address once (``parse_csv``'s). ``by``: who imported, for each new row's
    history.
    """
    counts = ImportCounts()
    added_after = store.last_subscriber_id()
    for start in range(0, len(rows), chunk):
        store.import_subscribers(rows[start : start + chunk], added_after, counts, by)
    return counts.added, counts.already, counts.left


class _ImportStore(Protocol):
    def last_subscriber_id(self) -> int: ...
    def import_subscribers(
        self,
        people: Sequence[NewSubscriber],
        added_after: int,
        counts: ImportCounts,
        by: str = ...,
    ) -> None: ...


def check_topics(chosen: Sequence[str], known: Collection[str]) -> None:
    """ValueError naming the topics of ``chosen`` that are not ``known`` (the sources').

    A reader is sent only stories of their topics, and only sources give stories topics:
    a misspelt topic would have every edition skip them without a word.
    """
    unknown = [topic for topic in chosen if topic not in known]
    if unknown:
        raise ValueError(f"no source has the topic {', '.join(map(repr, unknown))}")


def to_csv(rows: list[tuple[str, str | None, str, str | None, str | None, str]]) -> str:
    """CSV of (email, name, topics, timezone, locale, status) rows, with a header, for export.

    A cell that a spreadsheet would run as a formula (it starts with ``= + - @``, a tab or a
    CR: a name typed into the public form, say) is written with a ``'`` before it, which
    spreadsheets show as text; import takes that ``'`` off again.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_IMPORT_COLUMNS)
    for email, name, topics, tz, locale, status in rows:
        cells = [email, name or "", topics.replace(",", ";"), tz or "", locale or "", status]
        writer.writerow([_guarded(cell) for cell in cells])
    return out.getvalue()


# Every header name import reads, by column: the first is digest's own, the others what
# other tools' exports call it. Matched in any case, ignoring spaces, dashes and underscores.
_SPELLINGS: dict[str, tuple[str, ...]] = {
    "email": ("email", "e-mail", "email address", "mail"),
    "name": ("name", "full name", "display name"),
    "first_name": ("first name", "given name"),
    "last_name": ("last name", "surname", "family name"),
    "topics": ("topics", "topic", "interests"),
    "timezone": ("timezone", "time zone", "tz"),
    "locale": ("locale", "language", "lang"),
    "status": ("status",),
}
# Cells a spreadsheet reads as a formula (OWASP's list for CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _key(cell: str) -> str:
    return "".join(c for c in cell.lower() if c not in " -_")


_COLUMN_OF = {_key(s): column for column, spellings in _SPELLINGS.items() for s in spellings}


def _is_header(cells: list[str]) -> bool:
    """The first row is a header when it holds no address: a header of names digest does not
    know is refused, never read as people (nor a row of people as a header)."""
    return not any("@" in c for c in cells)


def _header(line: int, cells: list[str]) -> tuple[str, ...]:
    """The columns a header row names; CsvHeaderError for one it cannot map."""
    unknown = [c for c in cells if c and _key(c) not in _COLUMN_OF]
    if unknown:
        names = ", ".join(map(repr, unknown))
        what = (
            f"the header names columns digest does not know: {names}"
            if len(unknown) < len([c for c in cells if c])
            else f"line {line} has no address, so it is read as a header, but digest knows "
            f"none of its columns: {names}"
        )
        raise CsvHeaderError(line, f"{what}; the columns it reads are {accepted_columns()}")
    columns = tuple(_COLUMN_OF.get(_key(c), "") for c in cells)
    for column in set(columns) - {""}:
        if columns.count(column) > 1:
            twice = [c for c in cells if _COLUMN_OF.get(_key(c)) == column]
            raise CsvHeaderError(
                line, f"the header has {len(twice)} {column} columns: {', '.join(twice)}"
            )
    if "email" not in columns:
        raise CsvHeaderError(
            line, f"the header has no email column; the columns it reads are {accepted_columns()}"
        )
    return columns


def _delimiter(first: str) -> str:
    """The file's cell separator: a tab, a semicolon (as spreadsheets save CSV where the
    comma is the decimal mark) or a comma, as its first row (``first``) shows.

    A header row has no other punctuation, so the more frequent of ``;`` and ``,`` wins; a
    row of data may hold ``;`` between topics, so there a comma wins if there is one.
    """
    first = re.sub(r'"[^"]*"', "", first)  # a quoted cell's own commas do not count
    if "\t" in first:
        return "\t"
    if "@" not in first:
        return ";" if first.count(";") > first.count(",") else ","
    return "," if "," in first or ";" not in first else ";"


def _formula(cell: str) -> bool:
    """Whether a spreadsheet may read the cell as a formula: it starts with one of
    ``_FORMULA_START``, after any ``'`` (see ``_guarded``) and any spaces (which some
    spreadsheets trim on import: `` =cmd|...`` runs there as ``=cmd|...`` does)."""
    text = cell.lstrip("'")
    return text.startswith(_FORMULA_START) or text.lstrip().startswith(_FORMULA_START)


def _guarded(cell: str) -> str:
    """The cell with a ``'`` in front when a spreadsheet would read it as a formula (or it
    already starts with ``'`` before one, so that ``_unguarded`` gives it back whole)."""
    return "'" + cell if _formula(cell) else cell


def _unguarded(cell: str) -> str:
    """The cell as it was before ``_guarded``."""
    return cell[1:] if cell.startswith("'") and _formula(cell) else cell
