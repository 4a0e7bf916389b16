"""source hint: what to do about a source's last error, beside it

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 14:30:00

`digest gather` printed each failing source's hint (find the feed's new address, raise
gather.timeout_seconds, use kind = "page"...), but only the error was stored: `digest
sources` and the console showed the cause without the fix. A plain ADD COLUMN; sources
that failed before it show their hint from their next failure on.
"""

import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('sources', sa.Column('last_hint', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sources', schema=None) as batch_op:
        batch_op.drop_column('last_hint')
