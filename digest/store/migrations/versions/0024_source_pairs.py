"""source_pairs: the stories each two sources both carried, kept across runs

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 19:45:00

Each source's breadth (how much what it carries alongside looks like what every source
carries) is learned from every story the rank runs have tallied (``digest.rank.habits``):
the tally now counts, beside each source's stories and articles, each pair of sources'
stories carried together. A new table: nothing to move; the pairs count from the next
story that settles, and breadth waits until enough are tallied.
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'source_pairs',
        sa.Column('source', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('other', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('stories', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('source', 'other'),
    )


def downgrade() -> None:
    op.drop_table('source_pairs')
