"""Subscriber CSV files: reading one (header mapped by name, separator guessed, bad rows
reported with their line number and good rows kept) and writing the export.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Collection, Iterable, Iterator

from digest.states import SubscriberStatus
from digest.subscribers.checks import (
    STATUSES,
    NewSubscriber,
    check_name,
    check_subscriber_locale,
    check_subscriber_timezone,
    check_topics,
    normalise_email,
)

CSV_COLUMNS = ("email", "name", "topics", "timezone", "locale")
# Import also reads the ``status`` column that export writes, so an export imports as it was.
_IMPORT_COLUMNS = (*CSV_COLUMNS, "status")


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
    status = record.get("status") or SubscriberStatus.ACTIVE
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


def to_csv(
    rows: list[tuple[str, str | None, str, str | None, str | None, str]], header: bool = True
) -> str:
    """CSV of (email, name, topics, timezone, locale, status) rows, with a header (unless
    ``header`` is False: a later part of an export written a part at a time), for export.

    A cell that a spreadsheet would run as a formula (it starts with ``= + - @``, a tab or a
    CR: a name typed into the public form, say) is written with a ``'`` before it, which
    spreadsheets show as text; import takes that ``'`` off again.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
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
