"""Commands that set digest up: init, check, db, demo."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError

from digest.app import App
from digest.cli._common import Context, console, pass_context, run_async
from digest.cli.sources import health_warnings
from digest.config import Config, config_path, load_config
from digest.deliver.checks import config_problems
from digest.errors import ConfigError, UsageError
from digest.render import check_templates
from digest.resources import example_config
from digest.store import current_revision
from digest.subscribers import withdrawn_topics


@click.command()
@click.option("--force", is_flag=True, help="overwrite an existing file")
@pass_context
def init(ctx: Context, force: bool) -> None:
    """Write a starter config (the documented example) to --config or ./digest.toml."""
    target = config_path(ctx.config_path)
    if target.exists() and not force:
        # Bad usage (exit 2), not a failed run: nothing was tried, and the admin's file is kept.
        raise UsageError(
            f"{target} already exists; not overwritten",
            "pass --force to replace it with the example, or write the example elsewhere "
            "with `digest --config OTHER.toml init`",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(example_config(), target)
    click.echo(f"wrote {target}; edit it, then run `digest check`")


@click.command()
@click.option(
    "--connect",
    is_flag=True,
    help="then connect and log in to the delivery transport as a send would, sending "
    "nothing (the console's Delivery test)",
)
@pass_context
def check(ctx: Context, connect: bool) -> None:
    """Validate the config: exit 0, or print every problem as file:line: key: what; fix.

    With --connect, also reach the transport (SMTP: connect, TLS, login, QUIT; an API:
    its address and keys): exit 1 with the server's answer and a hint when it refuses.
    """
    config = load_config(ctx.config_path)
    errors, warnings = config_problems(config)
    # The sources failing now, when a database is there: warnings, never a failed check.
    for warning in [*warnings, *health_warnings(config, ctx.clock), *_reader_warnings(config, ctx)]:
        click.echo(f"warning: {warning}", err=True)
    if errors:
        raise ConfigError(errors)
    check_templates(config.templates_dir())  # TemplateError (exit 2) names file and line
    path = config_path(ctx.config_path)
    # A paused source gathers nothing: say how many will.
    enabled = sum(source.enabled for source in config.sources)
    sources = f"{_count_of(len(config.sources), 'source')} ({enabled} enabled)"
    click.echo(
        f"{path}: ok ({sources}, {_count_of(len(config.digests), 'digest')}, "
        f"delivery by {config.delivery.transport})"
    )
    if connect:  # the console's Delivery test: one function, so the two cannot disagree
        from digest.web.admin.views import check_transport

        click.echo(f"delivery: {check_transport(config)}")


def _reader_warnings(config: Config, ctx: Context) -> list[str]:
    """Readers whose chosen topics no source declares any more (a source removed, or its
    topics changed), when a database is there: warnings, never a failed check."""
    app = App.existing(config, ctx.clock)
    if app is None:
        return []
    try:
        choices = app.store.topic_choice_counts()
    except SQLAlchemyError:  # locked, say: the config's check is what counts here
        return []
    finally:
        app.close()
    warning = withdrawn_topics(choices, config.topics())
    return [warning] if warning else []


def _count_of(count: int, noun: str) -> str:
    """``1 digest``, ``2 digests``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


@click.group()
def db() -> None:
    """Database maintenance."""


@db.command()
@pass_context
def upgrade(ctx: Context) -> None:
    """Apply pending migrations (digest also does this on every start)."""
    app = ctx.app()
    click.echo(f"database at revision {current_revision(app.engine)}")


@db.command()
@pass_context
def prune(ctx: Context) -> None:
    """Delete what the retention settings let go: articles no source lists any more
    (gather.retention_days), old editions and old delivery rows, the habits of sources
    long gone from the config ([retention]); every gather does this too."""
    from digest.pipeline import prune_stored

    app = ctx.app()
    report = prune_stored(app)
    keep = app.config.retention
    click.echo(
        f"pruned {_count_of(report.articles, 'article')} not listed for "
        f"{app.config.gather.retention_days:g} days, "
        f"{_count_of(report.editions, 'edition')} older than {keep.editions_days:g} days, "
        f"{_count_of(report.deliveries, 'delivery row')} of editions older than "
        f"{keep.deliveries_days:g} days"
        + (
            f", the habits of {_count_of(report.habits, 'source')} not configured nor "
            f"fetched for {keep.source_habits_days:g} days"
            if report.habits
            else ""
        )
    )


@click.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo"),
    show_default=True,
    help="folder for the demo's config, feeds, database and Maildir",
)
@click.pass_context
def demo(click_ctx: click.Context, folder: Path) -> None:
    """Run the embedded default offline: sample feeds -> SQLite -> a digest in a local Maildir."""
    from digest import demo as demo_data
    from digest.cli.operate import print_run
    from digest.pipeline import run_digest
    from digest.render import write_preview

    config_file = demo_data.prepare(folder)
    ctx = Context(str(config_file))
    click_ctx.obj = ctx
    app = ctx.app()
    for email, name in demo_data.SUBSCRIBERS:
        app.store.add_subscriber(email, name)
    report = run_async(run_digest(app))
    print_run(report)
    assert report.edition is not None
    html, text = write_preview(app.config, report.edition, folder / "preview")
    pictures = demo_data.show_preview_pictures(html)
    mail = app.config.resolve_path(app.config.delivery.maildir.path)
    console.rule("the digest, as its plain-text part reads")
    # The preview's text: personal parts filled in as for a reader without a name.
    click.echo(text.read_text(encoding="utf-8").split("\n--\n")[0].rstrip())
    console.rule()
    click.echo(f"The digest landed in the Maildir {mail} ({_count(mail)} messages in all).")
    click.echo(f"Open it in a mail client:  neomutt -f {mail}")
    click.echo(f"Or in a browser:           {html}")
    if pictures:
        click.echo(
            f"The stories' {pictures} pictures show in the browser (drawn by the demo, in "
            f"{html.parent / 'pictures'}); offline, a mail client shows their boxes."
        )
    if not report.ok:
        raise SystemExit(1)


def _count(maildir: Path) -> int:
    return sum(1 for sub in ("new", "cur") for _ in (maildir / sub).glob("*"))


COMMANDS = [init, check, db, demo]
