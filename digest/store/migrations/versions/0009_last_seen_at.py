"""articles.last_seen_at: pruning keeps what a feed still lists (gather review, bug 5)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 19:40:00
"""

from alembic import op
import sqlalchemy as sa

import digest.store.tables

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable and not backfilled: prune_articles reads first_seen_at where it is NULL, so
    # a large articles table is not rewritten at upgrade.
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('last_seen_at', digest.store.tables.UTCDateTime(), nullable=True)
        )
        batch_op.create_index(
            batch_op.f('ix_articles_last_seen_at'), ['last_seen_at'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_articles_last_seen_at'))
        batch_op.drop_column('last_seen_at')
