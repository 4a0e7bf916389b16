"""``digest admins``: the accounts of the admin console (/admin of `digest serve`)."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from digest.cli._common import Context, console, pass_context
from digest.errors import DigestError, UsageError
from digest.subscribers import normalise_email

MIN_PASSWORD = 12  # characters; a console that can mail every subscriber deserves a long one


@click.group()
def admins() -> None:
    """Accounts that can log in to the admin console at /admin."""


def _address(raw: str) -> str:
    try:
        return normalise_email(raw)
    except ValueError as exc:
        raise UsageError(str(exc), "give the admin's email address") from exc


@admins.command()
@click.argument("email")
@click.option(
    "--password-stdin", is_flag=True, help="read the password from standard input (one line)"
)
@pass_context
def add(ctx: Context, email: str, password_stdin: bool) -> None:
    """Create an admin account; the password is asked twice (or read from stdin)."""
    from digest.web.admin.auth import hash_password

    address = _address(email)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        raise UsageError(
            f"the password has {len(password)} characters; at least {MIN_PASSWORD} are needed",
            "a few unrelated words make a long password that is easy to type",
        )
    store = ctx.app().store
    if store.add_admin(address, hash_password(password)) is None:
        raise DigestError(
            f"{address} is an admin already",
            f"`digest admins remove {address}` first to give it a new password",
        )
    click.echo(f"added admin {address}; log in at {ctx.config().service.base_url}/admin")


@admins.command("list")
@pass_context
def list_cmd(ctx: Context) -> None:
    """The admin accounts, with their last login."""
    rows = ctx.app().store.admins()
    table = Table("email", "since", "last login")
    for row in rows:
        last = f"{row.last_login_at:%Y-%m-%d %H:%M} UTC" if row.last_login_at else "never"
        table.add_row(row.email, f"{row.created_at:%Y-%m-%d}", last)
    console.print(table)
    click.echo(f"{len(rows)} admin{'' if len(rows) == 1 else 's'}")


@admins.command()
@click.argument("email")
@pass_context
def remove(ctx: Context, email: str) -> None:
    """Delete an admin account; its open sessions end at their next request."""
    address = _address(email)
    if not ctx.app().store.remove_admin(address):
        raise DigestError(f"{address} is not an admin", "`digest admins list` shows them")
    click.echo(f"removed admin {address}")


COMMANDS = [admins]
