"""gather state: conditional GET, redirects, backoff; richer articles

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 14:10:00
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel

import digest.store.tables

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sources', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fetch_url', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('etag', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('last_modified', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default='active'))
        batch_op.add_column(sa.Column('next_attempt_at', digest.store.tables.UTCDateTime(), nullable=True))
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('image_url', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('image_alt', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('language', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('section', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('breaking', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('modified_at', digest.store.tables.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_index('ix_articles_content_hash', ['content_hash'], unique=False)
        batch_op.create_index('ix_articles_first_seen_at', ['first_seen_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_index('ix_articles_first_seen_at')
        batch_op.drop_index('ix_articles_content_hash')
        for column in ('content_hash', 'modified_at', 'breaking', 'section', 'language',
                       'image_alt', 'image_url'):
            batch_op.drop_column(column)
    with op.batch_alter_table('sources', schema=None) as batch_op:
        for column in ('next_attempt_at', 'status', 'last_modified', 'etag', 'fetch_url'):
            batch_op.drop_column(column)
