"""edition message key: a random key of each edition in its deliveries' Message-IDs

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 14:00:00

A Message-ID hashed only the edition and delivery numbers with the reader's signed link,
so a copy of the database run with the same secret and base_url (a staging install)
repeated production's ids for every edition either built after the copy. Editions built
from now on carry a random key that goes into the hash; those built before keep none, and
their ids stay as they were (a message sent again keeps its id). A plain ADD COLUMN.
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        'editions', sa.Column('message_key', sqlmodel.sql.sqltypes.AutoString(), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table('editions', schema=None) as batch_op:
        batch_op.drop_column('message_key')
