"""``digest sources``: the sources' health table, and ``import`` of an OPML subscription list."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from digest.cli._common import Context, console, pass_context
from digest.config.loader import config_path, parse_config
from digest.errors import ConfigError, DigestError
from digest.sources.opml import append_sources, plan_import, read_opml


@click.group("sources", invoke_without_command=True)
@click.pass_context
def sources_cmd(click_ctx: click.Context) -> None:
    """The sources with their health (last success, failures, last error); `import` adds OPML."""
    if click_ctx.invoked_subcommand is not None:
        return
    ctx = click_ctx.find_object(Context)
    assert ctx is not None
    table = Table("source", "last success", "failures", "items", "last error")
    for row in ctx.app().store.list_sources():
        when = f"{row.last_success_at:%Y-%m-%d %H:%M}" if row.last_success_at else "never"
        table.add_row(
            row.name, when, str(row.consecutive_failures), str(row.items_seen), row.last_error or ""
        )
    console.print(table)


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
        ) from None
    path.write_text(new_text, encoding="utf-8")
    click.echo(f"{len(plan.added)} added, {len(plan.skipped)} skipped; wrote {path}")


COMMANDS = [sources_cmd]
