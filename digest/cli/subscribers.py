"""``digest subscribers``: add, remove, list, import and export subscribers."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from digest.cli._common import Context, console, pass_context
from digest.errors import DigestError
from digest.subscribers import normalise_email, parse_csv, to_csv


@click.group()
def subscribers() -> None:
    """Manage the people who receive the digests."""


@subscribers.command()
@click.argument("email")
@click.option("--name", default=None, help="how to greet them")
@click.option("--topic", "topics", multiple=True, help="only these topics (repeatable)")
@click.option("--timezone", default=None, help="their IANA time zone")
@pass_context
def add(
    ctx: Context, email: str, name: str | None, topics: tuple[str, ...], timezone: str | None
) -> None:
    """Add a subscriber (or reactivate one who left)."""
    try:
        address = normalise_email(email)
    except ValueError as exc:
        raise DigestError(str(exc), "check the address") from None
    row, changed = ctx.app().store.add_subscriber(address, name, topics, timezone)
    click.echo(f"added {row.email}" if changed else f"{row.email} is already subscribed")


@subscribers.command()
@click.argument("email")
@pass_context
def remove(ctx: Context, email: str) -> None:
    """Unsubscribe an address at once (the row stays, so history and suppression stay)."""
    try:
        address = normalise_email(email)
    except ValueError as exc:
        raise DigestError(str(exc), "check the address") from None
    if ctx.app().store.unsubscribe(email=address):
        click.echo(f"unsubscribed {address}")
    else:
        raise DigestError(f"{address} is not an active subscriber", "see `digest subscribers list`")


@subscribers.command("list")
@click.option("--all", "show_all", is_flag=True, help="include unsubscribed people")
@pass_context
def list_cmd(ctx: Context, show_all: bool) -> None:
    """List active subscribers (or everyone with --all)."""
    rows = ctx.app().store.subscribers(None if show_all else "active")
    table = Table("email", "name", "status", "topics", "time zone", "since")
    for r in rows:
        table.add_row(
            r.email,
            r.name or "",
            r.status,
            r.topics or "all",
            r.timezone or "",
            f"{r.created_at:%Y-%m-%d}",
        )
    console.print(table)
    click.echo(f"{len(rows)} subscribers")


@subscribers.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_context
def import_cmd(ctx: Context, csv_file: Path) -> None:
    """Import a CSV (email,name,topics,timezone); bad rows are reported by line, good ones kept."""
    good, problems = parse_csv(csv_file.read_text(encoding="utf-8-sig"))
    store = ctx.app().store
    added = sum(1 for s in good if store.add_subscriber(s.email, s.name, s.topics, s.timezone)[1])
    for line, what in problems:
        click.echo(f"{csv_file}:{line}: {what}", err=True)
    click.echo(
        f"imported {added} new, {len(good) - added} already subscribed, "
        f"{len(problems)} rows with problems"
    )
    if problems:
        raise SystemExit(1)


@subscribers.command("export")
@click.argument("csv_file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--all", "show_all", is_flag=True, help="include unsubscribed people")
@pass_context
def export_cmd(ctx: Context, csv_file: Path | None, show_all: bool) -> None:
    """Export subscribers as CSV to a file, or to standard output."""
    rows = ctx.app().store.subscribers(None if show_all else "active")
    text = to_csv([(r.email, r.name, r.topics, r.timezone, r.status) for r in rows])
    if csv_file is None:
        click.echo(text, nl=False)
    else:
        csv_file.write_text(text, encoding="utf-8")
        click.echo(f"wrote {len(rows)} subscribers to {csv_file}", err=True)


COMMANDS = [subscribers]
