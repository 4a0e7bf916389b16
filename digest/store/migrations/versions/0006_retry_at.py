"""deferred deliveries wait: retry_at with exponential backoff and jitter

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 15:08:00
"""

from alembic import op
import sqlalchemy as sa

import digest.store.tables

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retry_at', digest.store.tables.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('retry_at')
