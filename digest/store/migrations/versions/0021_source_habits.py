"""source_habits: what the rank runs saw each source do, kept across runs

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 14:00:00

The rerun habit (a source that runs a story in several articles) was learned from the
story memory alone, a day of settled stories; each rank run now adds the stories settled
since the last one to a per-source tally, and a source's day is believed against its long
run (``digest.rank.habits``). A new table: nothing to move, an empty tally ranks as before.
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

from digest.store.tables import UTCDateTime

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'source_habits',
        sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('stories', sa.Integer(), nullable=False),
        sa.Column('articles', sa.Integer(), nullable=False),
        sa.Column('tallied_until', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('source'),
    )


def downgrade() -> None:
    op.drop_table('source_habits')
