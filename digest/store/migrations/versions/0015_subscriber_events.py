"""subscriber_events: each change of a subscriber's status, when, from, to and by what

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 06:30:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

from digest.store.tables import UTCDateTime

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'subscriber_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('subscriber_id', sa.Integer(), nullable=False),
        sa.Column('at', UTCDateTime(), nullable=False),
        sa.Column('from_status', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column('to_status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('by', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(
        op.f('ix_subscriber_events_subscriber_id'),
        'subscriber_events',
        ['subscriber_id'],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_subscriber_events_subscriber_id'), table_name='subscriber_events')
    op.drop_table('subscriber_events')
