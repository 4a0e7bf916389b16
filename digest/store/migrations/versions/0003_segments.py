"""segments: subscribers' locale, editions keep their ranked stories

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 14:05:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    with op.batch_alter_table('editions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stories', sa.Text(), nullable=False, server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('editions', schema=None) as batch_op:
        batch_op.drop_column('stories')
    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.drop_column('locale')
