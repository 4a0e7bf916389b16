"""sources.listing (what a 304 still lists) and digest_starts (no catch-up from before a
digest was first scheduled)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 06:00:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel

import digest.store.tables

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sources', schema=None) as batch_op:
        batch_op.add_column(sa.Column('listing', sa.Text(), nullable=True))
    # Forget the validators, so the next gather reads every source in full and learns what
    # it lists (until then a 304 would have to mark all of a source's articles as listed).
    op.execute("UPDATE sources SET etag = NULL, last_modified = NULL")
    op.create_table(
        'digest_starts',
        sa.Column('digest_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('scheduled_at', digest.store.tables.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('digest_id'),
    )


def downgrade() -> None:
    op.drop_table('digest_starts')
    with op.batch_alter_table('sources', schema=None) as batch_op:
        batch_op.drop_column('listing')
