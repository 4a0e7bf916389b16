"""deliveries (status, sent_at) index: the sending limits count recent sends without a scan

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 00:05:00
"""

from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_status_sent_at', ['status', 'sent_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_status_sent_at')
