"""deliveries message_id index: a bounce report is checked against the Message-IDs it quotes

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 05:30:00
"""

from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_message_id', ['message_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_message_id')
