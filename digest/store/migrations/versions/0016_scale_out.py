"""scale out: a partial index of claimable deliveries, workers' heartbeats, shared limits

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 06:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

from digest.store.tables import UTCDateTime

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

CLAIMABLE = "status IN ('pending', 'deferred', 'sending')"


def upgrade() -> None:
    op.create_table(
        'workers',
        sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('role', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('host', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('started_at', UTCDateTime(), nullable=False),
        sa.Column('last_seen', UTCDateTime(), nullable=False),
        sa.Column('sent', sa.Integer(), nullable=False),
        sa.Column('rate', sa.Float(), nullable=False),
        sa.Column('state', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'rate_windows',
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('tokens', sa.Float(), nullable=False),
        sa.Column('updated', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index(
            'ix_deliveries_claimable',
            ['edition_id', 'id'],
            unique=False,
            postgresql_where=sa.text(CLAIMABLE),
            sqlite_where=sa.text(CLAIMABLE),
        )


def downgrade() -> None:
    op.drop_table('rate_windows')
    op.drop_table('workers')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_claimable')
