"""edition_views: what each choice of topics was shown of an edition

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 22:00:00

A subscriber who picked topics gets a Latest filled from their topics' stories, those the
edition's per-source cap passed over included; what the readers of each choice of topics
were shown is kept here, one row per edition and choice, so a later edition does not show
them a story again unless it grew. A new table: nothing to move; editions built before
have no rows, so their topic readers are taken to have had what narrowing gave them then
(the edition-wide repeat rule already covers that).
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
        sa.Column('stories', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['edition_id'], ['editions.id']),
        sa.PrimaryKeyConstraint('edition_id', 'topic_key'),
    )


def downgrade() -> None:
    op.drop_table('edition_views')
