"""job runs: the daemon's last result of each job, for `digest status`

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 15:00:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel

import digest.store.tables

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'job_runs',
        sa.Column('job', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('started_at', digest.store.tables.UTCDateTime(), nullable=False),
        sa.Column('finished_at', digest.store.tables.UTCDateTime(), nullable=False),
        sa.Column('ok', sa.Boolean(), nullable=False),
        sa.Column('summary', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('job'),
    )


def downgrade() -> None:
    op.drop_table('job_runs')
