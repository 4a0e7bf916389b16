"""image size: a picture's width and height as its source states them

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 09:00:00

The email sizes a picture by its width and height attributes (Outlook reads nothing
else); with the source's own size it keeps the picture's shape instead of a fixed 16:9 box.
Articles stored before this have neither: they keep the 16:9 box. Plain ADD COLUMNs (no
table copy on SQLite): a large articles table upgrades at once.
"""

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('articles', sa.Column('image_width', sa.Integer(), nullable=True))
    op.add_column('articles', sa.Column('image_height', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_column('image_height')
        batch_op.drop_column('image_width')
