"""edition_views: each choice of topics' own edition, stored when the edition is built

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 22:30:00

A subscriber who picked topics gets their choice's own edition: its Latest filled from
their topics' stories under the per-source cap, less what that choice was shown beyond
the edition before. The build works it out for each choice of the active subscribers and
stores it here with the edition (its stories in order, and those it shows beyond the
edition's own); the send renders exactly that. A new table: nothing to move; an edition
built before has no rows, so its topic readers get the edition narrowed, as then.
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'edition_views',
        sa.Column('edition_id', sa.Integer(), nullable=False),
        sa.Column('topic_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('view', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['edition_id'], ['editions.id']),
        sa.PrimaryKeyConstraint('edition_id', 'topic_key'),
    )


def downgrade() -> None:
    op.drop_table('edition_views')
