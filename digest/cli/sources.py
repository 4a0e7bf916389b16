"""``digest sources``: the sources' health table, and ``import`` of an OPML subscription list."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from digest.app import App
from digest.cli._common import Context, console, pass_context
from digest.clock import Clock
from digest.config import Config
from digest.config.loader import config_path, parse_config
from digest.errors import ConfigError, DigestError
from digest.sources.health import SourceHealth, health_warning, source_health, state_words
from digest.sources.opml import append_sources, plan_import, read_opml


@click.group("sources", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="print one JSON document of the sources")
@click.pass_context
def sources_cmd(click_ctx: click.Context, as_json: bool) -> None:
    """The sources with their health (last success, failures, state, last error); `import`
    adds OPML."""
    if click_ctx.invoked_subcommand is not None:
        return
    ctx = click_ctx.find_object(Context)
    assert ctx is not None
    app = ctx.app()
    health = source_health(app.store, app.config.sources)
    if as_json:
        click.echo(json.dumps({"sources": [_health_dict(h) for h in health]}, indent=2))
        return
    table = Table("source", "last success", "failures", "items", "state", "last error")
    table.columns[1].no_wrap = True  # a date and time, on one line
    table.columns[4].max_width = 10  # the last error needs the room more
    for h in health:
        when = f"{h.last_success_at:%Y-%m-%d %H:%M}" if h.last_success_at else "never"
        table.add_row(
            h.name,
            when,
            str(h.consecutive_failures),
            str(h.items_seen),
            state_words(h),
            (h.last_error or "") + (f"\nhint: {h.last_hint}" if h.last_hint else ""),
        )
    # Into a pipe or a file (cron mail, grep) the errors need not wrap at 80 columns.
    (console if console.is_terminal else Console(width=_PIPE_WIDTH)).print(table)


_PIPE_WIDTH = 160


def _health_dict(h: SourceHealth) -> dict[str, object]:
    return {
        "name": h.name,
        "state": h.condition.value,
        "next_attempt_at": h.next_attempt_at.isoformat() if h.next_attempt_at else None,
        "last_success_at": h.last_success_at.isoformat() if h.last_success_at else None,
        "consecutive_failures": h.consecutive_failures,
        "items_seen": h.items_seen,
        "last_error": h.last_error,
        "last_hint": h.last_hint,
    }


def health_warnings(config: Config, clock: Clock) -> list[str]:
    """`digest check`'s words on the sources that fail now (FAIL, WAIT, GONE), each with its
    last error and, on a second line, its hint; none when the database is not made yet (a
    new install: nothing is created to find that out), cannot be read, or is not migrated."""
    app = App.existing(config, clock)
    if app is None:
        return []
    try:
        health = source_health(app.store, config.sources)
    except SQLAlchemyError:  # locked, say: the config's check is what counts here
        return []
    finally:
        app.close()
    return [line for h in health if (line := health_warning(h))]


@sources_cmd.command("import")
@click.argument("opml_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--dry-run", is_flag=True, help="print what would be added; change nothing")
@pass_context
def import_cmd(ctx: Context, opml_file: Path, dry_run: bool) -> None:
    """Add each feed of an OPML file as a [[sources]] table; known names and URLs are skipped."""
    config = ctx.config()  # a broken config is reported as such before anything is added
    path = config_path(ctx.config_path)
    feeds = read_opml(opml_file.read_bytes(), str(opml_file))
    plan = plan_import(feeds, [s.name for s in config.sources], [s.url for s in config.sources])
    for name, why in plan.skipped:
        click.echo(f"  skip  {name}: {why}")
    for feed in plan.added:
        click.echo(f"  {'would add' if dry_run else 'add'}   {feed.name}: {feed.url}")
    if dry_run or not plan.added:
        click.echo(f"{len(plan.added)} to add, {len(plan.skipped)} skipped; {path} unchanged")
        return
    text = path.read_text(encoding="utf-8")
    new_text = append_sources(text, plan.added)
    try:
        parse_config(new_text, path)  # never write a config that `digest check` rejects
    except ConfigError as exc:
        raise DigestError(
            f"the imported sources would make {path} invalid; nothing was written:\n{exc}",
            "fix the config (or the OPML file), then import again",
        ) from exc
    path.write_text(new_text, encoding="utf-8")
    click.echo(f"{len(plan.added)} added, {len(plan.skipped)} skipped; wrote {path}")


COMMANDS = [sources_cmd]
