"""``digest subscribers``: add, remove, list, import and export subscribers."""

from __future__ import annotations

import codecs
import itertools
import json
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TypeVar

import click
from rich.console import Console
from rich.table import Table

from digest.cli._common import Context, console, pass_context
from digest.cli._people import person_json, print_record, record_json
from digest.config import Config
from digest.config.models import NO_SOURCE_HAS
from digest.errors import DigestError, UsageError
from digest.states import SubscriberStatus
from digest.store import Subscriber
from digest.store.subscribers import ImportCounts
from digest.subscribers import (
    STATUSES,
    CsvHeaderError,
    NewSubscriber,
    check_name,
    check_subscriber_locale,
    check_subscriber_timezone,
    check_topics,
    normalise_email,
    read_csv,
    stored_form,
    to_csv,
    twice,
)
from digest.subscribers.record import subscriber_record

IMPORT_CHUNK = 1000  # rows per lookup and insert: flat memory, few round trips

_CsvRow = tuple[int, NewSubscriber | str]  # (line, a valid row or what is wrong with it)


@click.group()
def subscribers() -> None:
    """Manage the people who receive the digests."""


def _known_topics(config: Config) -> tuple[list[str], str]:
    """The topics the sources declare (a subscriber may choose only these), and a hint
    naming them."""
    known = config.topics()
    if known:
        return known, f"the sources' topics are: {', '.join(known)}"
    return known, "no source declares topics: leave the topics out (they get every story)"


_In = TypeVar("_In")
_Out = TypeVar("_Out")


def _usage(check: Callable[[_In], _Out], value: _In, hint: str) -> _Out:
    """``check(value)``; its ValueError is bad usage (exit 2) with ``hint``: bad input on
    the command line, as an unknown option is."""
    try:
        return check(value)
    except ValueError as exc:
        raise UsageError(str(exc), hint) from exc


@subscribers.command()
@click.argument("email")
@click.option("--name", default=None, help="how to greet them")
@click.option("--topic", "topics", multiple=True, help="only these topics (repeatable)")
@click.option("--timezone", default=None, help="their IANA time zone")
@click.option("--locale", default=None, help="language of their email, such as fr or de")
@pass_context
def add(
    ctx: Context,
    email: str,
    name: str | None,
    topics: tuple[str, ...],
    timezone: str | None,
    locale: str | None,
) -> None:
    """Add a subscriber (or reactivate one who left); for one already in, set the details given."""
    address = _usage(normalise_email, email, "check the address")
    timezone = _usage(
        check_subscriber_timezone, timezone, "see `timedatectl list-timezones` for the names"
    )
    locale = _usage(
        check_subscriber_locale, locale, "use a language code such as 'en', 'fr' or 'pt_BR'"
    )
    name = _usage(check_name, name, "give the name they go by on one line, or none")
    known, topics_hint = _known_topics(ctx.config())
    _usage(
        partial(check_topics, known=known),
        topics,
        f"{topics_hint}; add topics = [...] to a [[sources]] table for a new one",
    )
    store = ctx.app().store
    before = store.subscriber_by_email(address)
    row, changed = store.add_subscriber(address, name, topics, timezone, locale)
    if changed:
        was = f" (was {before.status})" if before is not None else ""
        click.echo(f"{'re-subscribed' if before else 'added'} {row.email}{was}")
        return
    updated = store.update_subscriber(address, name, topics, timezone, locale)
    if updated:
        click.echo(f"{row.email} is already subscribed: updated {', '.join(updated)}")
    else:
        click.echo(f"{row.email} is already subscribed")


@subscribers.command()
@click.argument("email")
@pass_context
def remove(ctx: Context, email: str) -> None:
    """Unsubscribe an address at once (the row stays, so history and suppression stay)."""
    store = ctx.app().store
    address = stored_form(email)
    try:
        normalise_email(email)
    except ValueError as exc:
        if store.subscriber_by_email(address) is None:
            raise DigestError(str(exc), "check the address") from exc
    if store.unsubscribe(email=address, by="an admin (`digest subscribers remove`)"):
        click.echo(f"unsubscribed {address}")
        return
    row = store.subscriber_by_email(address)
    if row is None:
        raise DigestError(f"{address} is not a subscriber", "see `digest subscribers list --all`")
    click.echo(f"{address} is already {row.status}: nothing to do")


@subscribers.command()
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="one JSON document, for scripts")
@pass_context
def show(ctx: Context, email: str, as_json: bool) -> None:
    """One reader's record, for "why didn't I get it?": status and its history, each
    delivery with its state and reason, the recent editions that never queued them and
    why, and the retry that sends what failed."""
    store = ctx.app().store
    address = stored_form(email)
    row = store.subscriber_by_email(address)
    if row is None:
        raise DigestError(
            f"{address} is not a subscriber",
            "`digest subscribers list --all --search TEXT` finds an address by a part of it",
        )
    record = subscriber_record(store, row)
    if as_json:
        click.echo(json.dumps(record_json(record), indent=2))
        return
    print_record(record)


@subscribers.command("list")
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="everyone: also pending, paused, unsubscribed, bounced and complained people",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(STATUSES),
    help="only people in this status (repeatable; instead of active)",
)
@click.option("--topic", default=None, help="only people who get this topic's stories")
@click.option("--search", default=None, help="only people whose address or name holds this text")
@click.option("--json", "as_json", is_flag=True, help="one JSON list of people, for scripts")
@pass_context
def list_cmd(
    ctx: Context,
    show_all: bool,
    statuses: tuple[str, ...],
    topic: str | None,
    search: str | None,
    as_json: bool,
) -> None:
    """List active subscribers (or everyone with --all), narrowed by status, topic or text.

    --topic lists those who get the topic's stories: it is one of theirs, or they chose
    none (every topic). --search matches part of the address or the name, in any case.
    """
    if topic is not None:
        _check_topic(ctx, topic)
    store = ctx.app().store
    wanted = statuses or (() if show_all else (SubscriberStatus.ACTIVE,))
    rows = store.find_subscribers(wanted, topic, search)
    if as_json:
        click.echo(json.dumps([person_json(r) for r in rows], indent=2))
        return
    _print_table(rows)
    plural = "" if len(rows) == 1 else "s"
    narrowed = topic is not None or bool(search) or bool(statuses)
    hidden = 0 if show_all or narrowed else len(store.subscribers(None)) - len(rows)
    click.echo(
        f"{len(rows)} subscriber{plural}"
        + (" found" if narrowed else "")
        + (f" (and {hidden} pending, paused or gone: --all lists them)" if hidden else "")
    )


def _check_topic(ctx: Context, topic: str) -> None:
    """UsageError unless a source declares ``topic``, with the topics there are."""
    known, topics_hint = _known_topics(ctx.config())
    try:
        check_topics((topic,), known)
    except ValueError as exc:
        raise UsageError(str(exc), topics_hint) from exc


def _print_table(rows: Sequence[Subscriber]) -> None:
    """The people as a table, addresses whole."""
    table = Table()
    # An address is what the reader acts on: never cut it short to fit the terminal.
    table.add_column("email", no_wrap=True, min_width=max((len(r.email) for r in rows), default=5))
    for title in ("name", "status", "topics", "time zone", "since"):
        table.add_column(title)
    for r in rows:
        table.add_row(
            r.email,
            r.name or "",
            r.status,
            r.topics or "all",
            r.timezone or "",
            f"{r.created_at:%Y-%m-%d}",
        )
    # Piped or captured, the table keeps its natural width instead of a guessed 80 columns.
    (console if console.is_terminal else Console(width=1000)).print(table)


@subscribers.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_context
def import_cmd(ctx: Context, csv_file: Path) -> None:
    """Import a CSV (email,name,topics,timezone,locale,status); bad rows are reported, good kept.

    The header row is optional (without it the columns are email,name,topics,timezone,locale).
    Its names are read in any case and as other tools spell them (Email Address, Full Name,
    First Name and Last Name, Time Zone, Language...); a column it does not know refuses the
    file (exit 2) with the names it reads. Cells may be separated by commas, semicolons or
    tabs. Topics are separated by ';' and must be topics a source declares, as for `add`.
    A leading ' that export puts before a cell starting with = + - @ is taken off. People
    who unsubscribed are not re-added: an import is not their consent.
    """
    _check_utf8(csv_file)
    known_topics, topics_hint = _known_topics(ctx.config())
    store = ctx.app().store
    counts = ImportCounts()
    added_after = store.last_subscriber_id()
    problems = topic_problems = 0

    def report(found: list[tuple[int, str]]) -> None:
        nonlocal problems, topic_problems
        for line, what in sorted(found):
            click.echo(f"{csv_file}:{line}: {what}", err=True)
            topic_problems += what.startswith(NO_SOURCE_HAS)
        problems += len(found)

    with csv_file.open(encoding="utf-8-sig", newline="") as lines:
        for chunk in _chunks(read_csv(lines, known_topics), csv_file):
            found, people = _sort_chunk(chunk)
            lines_of = [line for line, _ in people.values()]
            before = len(counts.twice)
            store.import_subscribers(
                [p for _, p in people.values()],
                added_after,
                counts,
                f"an import (`digest subscribers import {csv_file.name}`)",
            )
            found += [(lines_of[i], twice(email)) for i, email in counts.twice[before:]]
            report(found)
    if topic_problems:
        click.echo(f"hint: {topics_hint}", err=True)
    _import_summary(counts, problems)


def _import_summary(counts: ImportCounts, problems: int) -> None:
    """What the import did; exit 1 when any row had a problem."""
    added, already, opted_out = counts.added, counts.already, counts.not_readded
    left_out = f"{opted_out} unsubscribed earlier (not re-added), " if opted_out else ""
    click.echo(
        f"imported {added} new, {already} already subscribed, {left_out}"
        f"{problems} rows with problems"
    )
    if opted_out:
        click.echo(
            "hint: `digest subscribers add EMAIL` re-adds one person at their request", err=True
        )
    if problems:
        raise SystemExit(1)


def _chunks(rows: Iterator[_CsvRow], csv_file: Path) -> Iterator[list[_CsvRow]]:
    """The rows IMPORT_CHUNK at a time; a header digest cannot read is a UsageError."""
    while True:
        try:
            chunk = list(itertools.islice(rows, IMPORT_CHUNK))
        except CsvHeaderError as exc:
            raise UsageError(
                f"{csv_file}:{exc.line}: {exc}",
                "rename each column to a name digest reads, or delete the columns it "
                "does not need, and import again",
            ) from exc
        if not chunk:
            return
        yield chunk


def _sort_chunk(
    chunk: list[_CsvRow],
) -> tuple[list[tuple[int, str]], dict[str, tuple[int, NewSubscriber]]]:
    """A chunk's problems (a bad row, an address twice) and its people by address."""
    found: list[tuple[int, str]] = []
    people: dict[str, tuple[int, NewSubscriber]] = {}
    for line, row in chunk:
        if isinstance(row, str):
            found.append((line, row))
        elif row.email in people:
            found.append((line, twice(row.email)))
        else:
            people[row.email] = (line, row)
    return found, people


def _check_utf8(csv_file: Path) -> None:
    """DigestError unless the whole file is UTF-8, read in blocks: nothing of a file that
    is not is imported (a spreadsheet saved it in another encoding)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with csv_file.open("rb") as data:
        while block := data.read(1 << 20):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                line += block[: exc.start].count(b"\n")
                raise DigestError(
                    f"{csv_file} is not UTF-8 text (line {line} is not)",
                    "save it as 'CSV UTF-8' and import it again",
                ) from exc
            line += block.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise DigestError(
            f"{csv_file} is not UTF-8 text (it ends in the middle of a character)",
            "save it as 'CSV UTF-8' and import it again",
        ) from exc


@subscribers.command("export")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="everyone: also pending, paused, unsubscribed, bounced and complained people",
)
@pass_context
def export_cmd(ctx: Context, csv_file: Path | None, show_all: bool) -> None:
    """Export subscribers as CSV to a file, or to standard output.

    A cell starting with = + - @ (or a tab or CR) gets a ' in front, so a spreadsheet shows
    it as text instead of running it as a formula (anyone can type a name into the sign-up
    form); `subscribers import` takes the ' off again.
    """
    rows = ctx.app().store.subscribers(None if show_all else SubscriberStatus.ACTIVE)
    text = to_csv([(r.email, r.name, r.topics, r.timezone, r.locale, r.status) for r in rows])
    if csv_file is None:
        click.echo(text, nl=False)
    else:
        csv_file.write_text(text, encoding="utf-8")
        click.echo(f"wrote {len(rows)} subscribers to {csv_file}", err=True)


COMMANDS = [subscribers]
