"""``digest bounces process``: suppress addresses that later bounced (DSNs in a mailbox)."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli._common import Context, pass_context
from digest.deliver.bounces import bounces_in, read_mailbox, verp_recipient
from digest.links import read_verp
from digest.subscribers import stored_form


@click.group()
def bounces() -> None:
    """Bounces that arrive by mail after a message was accepted."""


@bounces.command()
@click.argument("mailbox_path", type=click.Path(path_type=Path))
@pass_context
def process(ctx: Context, mailbox_path: Path) -> None:
    """Read DSNs (RFC 3464) from a Maildir or mbox and suppress dead addresses."""
    app = ctx.app()
    store = app.store
    secret = app.config.secrets()  # a bounce of mail sent before a rotation names its token
    known = {s.email: s for s in store.subscribers()}
    messages = dsns = suppressed = 0
    for message in read_mailbox(mailbox_path):
        messages += 1
        found = bounces_in(message)
        dsns += bool(found)
        # With VERP the bounce came back to bounce+TOKEN@: the token names the subscriber
        # even when the failed address was a forwarding target.
        verp = verp_recipient(message)
        public_id = read_verp(secret, verp) if verp else None
        owner = store.subscriber_by_public_id(public_id) if public_id else None
        for bounce in found:
            subscriber = known.get(stored_form(bounce.address)) or owner
            if subscriber is None:
                click.echo(f"  {bounce.address}: {bounce.status}: not a subscriber; ignored")
            elif bounce.dead and subscriber.id is not None:
                if store.suppress_subscriber(subscriber.id, "bounced"):
                    suppressed += 1
                    click.echo(
                        f"  {bounce.address}: {bounce.status}: suppressed "
                        f"({bounce.diagnostic or 'no diagnostic'})"
                    )
            else:
                click.echo(
                    f"  {bounce.address}: {bounce.status}: permanent failure kept "
                    f"active ({bounce.diagnostic or 'no diagnostic'})"
                )
    click.echo(
        f"{messages} messages read, {dsns} bounce reports, {suppressed} addresses suppressed"
    )


COMMANDS = [bounces]
