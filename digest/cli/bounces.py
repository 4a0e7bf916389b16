"""``digest bounces process``: mail that comes back (DSNs, mailto unsubscribes), from a
mailbox or piped in by the MTA."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from email.message import Message
from pathlib import Path

import click

from digest.cli._common import Context, pass_context
from digest.deliver.bounces import read_mailbox, read_message
from digest.deliver.inbound import InboundRules, handle_inbound


@click.group()
def bounces() -> None:
    """Bounces and unsubscribe requests that arrive by mail."""


@bounces.command()
@click.argument("mailbox_path", type=click.Path(path_type=Path, allow_dash=True))
@pass_context
def process(ctx: Context, mailbox_path: Path) -> None:
    """Read DSNs (RFC 3464) and replies to the List-Unsubscribe mailto: from a Maildir, an
    mbox, one message's own file (.eml), or one message on stdin (``-``, for an MTA pipe);
    suppress dead addresses and unsubscribe the readers whose token is genuine, and say
    what was refused and why."""
    app = ctx.app()
    config = app.config
    rules = InboundRules(
        secret=config.secrets(),  # a bounce or reply to mail sent before a rotation
        verp_domain=config.delivery.verp_domain,
        unsubscribe_address=config.unsubscribe_mailto(),
    )
    messages: Iterable[Message]
    if str(mailbox_path) == "-":
        messages = [read_message(sys.stdin.buffer.read())]
    else:
        messages = read_mailbox(mailbox_path)
    report = handle_inbound(messages, app.store, rules)
    for outcome in report.outcomes:
        click.echo(outcome.line)
    click.echo(report.summary())


COMMANDS = [bounces]
