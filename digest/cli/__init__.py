"""The command line: thin commands over App and the pipeline; errors become message + hint.

Exit codes: 0 ok, 1 the run failed, 2 bad usage or config.
"""

from __future__ import annotations

import logging
import sys
import traceback

import click
from sqlalchemy.exc import DBAPIError

from digest import __version__, logs
from digest.cli import admins, bounces, operate, setup, sources, subscribers, web, workers
from digest.cli._common import Context
from digest.clock import SYSTEM_CLOCK, Clock
from digest.errors import DigestError
from digest.store.trouble import (
    SCHEMA_HINT,
    database_error,
    database_trouble,
    database_words,
    schema_behind,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="config file (default: $DIGEST_CONFIG, else ./digest.toml)",
)
@click.option("-v", "--verbose", count=True, help="more detail: -v info, -vv debug")
@click.option(
    "--log-json",
    is_flag=True,
    envvar="DIGEST_LOG_JSON",
    help="log one JSON object a line (for journald, Loki, ...); also $DIGEST_LOG_JSON=1",
)
@click.version_option(__version__, prog_name="digest")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int, log_json: bool) -> None:
    """digest: gathers news feeds, groups and ranks the stories, and mails a digest."""
    logs.configure(verbose, log_json)
    # ``main`` hands its clock in as the context object; the commands get a Context on it.
    clock = ctx.obj if ctx.obj is not None else SYSTEM_CLOCK
    ctx.obj = Context(config_path, clock=clock)


for module in (setup, operate, sources, subscribers, bounces, web, admins, workers):
    for command in module.COMMANDS:
        cli.add_command(command)


def main(clock: Clock = SYSTEM_CLOCK) -> None:
    """Entry point of the ``digest`` console script (``clock``: the time the command runs
    at; tests pass a set one)."""
    try:
        cli.main(standalone_mode=False, obj=clock)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DigestError as exc:
        _trace(exc)
        click.echo(f"error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        sys.exit(exc.exit_code)
    except DBAPIError as exc:  # locked, full, read-only: the database, not the command
        if schema_behind(exc):  # a migration missed, or a bug: the traceback, then the hint
            traceback.print_exception(exc)
            click.echo(f"error: {database_words(exc)}", err=True)
            click.echo(f"hint: {SCHEMA_HINT}", err=True)
            sys.exit(1)
        if not database_trouble(exc):
            raise
        _trace(exc)
        error = database_error(exc)
        click.echo(f"error: {error.message}", err=True)
        click.echo(f"hint: {error.hint}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(1)
    except SystemExit:
        raise
    sys.exit(0)


def _trace(exc: BaseException) -> None:
    """At -vv (and in JSON logs at -vv) the traceback with its chained causes, above the
    friendly lines: the hint is for the admin, the cause for whoever debugs the failure.
    At normal verbosity only the message and hint are printed."""
    log = logging.getLogger("digest.cli")
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%s: %s", type(exc).__name__, exc, exc_info=exc)
