"""subscribers.email in ASCII: an internationalised domain becomes its punycode form

Addresses are now stored as digest sends them (digest.subscribers.normalise_email): plain
SMTP, so ASCII. Rows added before with a Unicode domain are rewritten to the same mailbox's
ASCII form, so `subscribers remove` finds them and their mail goes out. A row whose part
before the @ is not ASCII, or whose ASCII form another row already has, is left as it is
and named in the upgrade's output; each edition fails its delivery with the reason.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 20:10:00
"""

import logging

from alembic import op
import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None
log = logging.getLogger("digest.store")


def upgrade() -> None:
    connection = op.get_bind()
    subscribers = sa.table('subscribers', sa.column('id'), sa.column('email'))
    rows = connection.execute(sa.select(subscribers.c.id, subscribers.c.email)).all()
    taken = {email for _, email in rows}
    for row_id, email in rows:
        if email.isascii():
            continue
        try:
            ascii_email = _ascii_form(email)
        except ValueError as exc:
            log.warning(
                "subscriber %s left as it is: %s; `digest subscribers remove` takes it as written",
                email,
                exc,
            )
            continue
        if ascii_email in taken:
            log.warning("subscriber %s left as it is: %s is already a subscriber", email, ascii_email)
            continue
        connection.execute(
            subscribers.update().where(subscribers.c.id == row_id).values(email=ascii_email)
        )
        taken.add(ascii_email)


def _ascii_form(raw: str) -> str:
    """The address as digest.subscribers.normalise_email gave it when this revision was
    written, frozen here: a migration must do tomorrow what it did the day it was written,
    whatever the live code becomes. Only its full check is copied: the rows this migration
    rewrites are not ASCII, which the live function's fast path never takes."""
    address = raw.strip()
    try:
        checked = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        if "@" in address and not address.rpartition("@")[0].isascii():
            raise ValueError(
                f"{address!r} cannot be sent to: the part before the @ has non-ASCII "
                "characters, which needs SMTPUTF8, and digest sends plain SMTP"
            ) from exc
        raise ValueError(f"{address!r} is not a valid address: {exc}") from exc
    assert checked.ascii_email is not None  # always set when SMTPUTF8 is not allowed
    return checked.ascii_email.lower()


def downgrade() -> None:
    pass  # the ASCII form reaches the same mailbox: nothing to undo
