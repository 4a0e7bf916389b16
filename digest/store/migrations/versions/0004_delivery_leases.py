"""delivery leases: a claimed row belongs to its sender until the lease runs out

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 14:30:00
"""

from alembic import op
import sqlalchemy as sa

import digest.store.tables

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_until', digest.store.tables.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('lease_until')
