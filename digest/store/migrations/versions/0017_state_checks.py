"""state checks: every status column holds one of its type's values (digest.states)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 07:00:00

A database written by a release before this one could hold a value no release writes (a
hand edit, say): the upgrade names the table, the column and the values, instead of
failing on a bare constraint error, and changes nothing until they are fixed.
"""

import sqlalchemy as sa
from alembic import op

from digest.errors import StoreError

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

# (table, column, the values it may hold). Written out as digest.states had them when this
# migration was made, so a later change there needs a migration of its own.
SUBSCRIBER = ('active', 'pending', 'paused', 'unsubscribed', 'bounced', 'complained')
DELIVERY = ('pending', 'sending', 'sent', 'deferred', 'paused', 'failed', 'suppressed', 'skipped')
CHECKS: list[tuple[str, str, tuple[str, ...]]] = [
    ('sources', 'status', ('active', 'gone')),
    ('subscribers', 'status', SUBSCRIBER),
    ('deliveries', 'status', DELIVERY),
    ('subscriber_events', 'from_status', SUBSCRIBER),
    ('subscriber_events', 'to_status', SUBSCRIBER),
    ('workers', 'role', ('worker', 'scheduler')),
    # '': a heartbeat row that has not said yet (the column's default)
    ('workers', 'state', ('', 'idle', 'waiting', 'sending', 'stopping', 'leading', 'standby')),
]


def _sql_in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


def _check_rows() -> None:
    """Refuse to go on while a row holds a value its constraint would reject."""
    bind = op.get_bind()
    for table, column, values in CHECKS:
        t = sa.table(table, sa.column(column))
        c = t.c[column]
        found = bind.execute(
            sa.select(c).where(c.is_not(None), c.not_in(values)).distinct().limit(5)
        ).scalars()
        bad = sorted(str(v) for v in found)
        if bad:
            raise StoreError(
                f"cannot add the check on {table}.{column}: rows hold {', '.join(map(repr, bad))}",
                f"set those rows to one of {', '.join(values)} (or remove them), then start "
                "digest again",
            )


def upgrade() -> None:
    _check_rows()
    by_table: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for table, column, values in CHECKS:
        by_table.setdefault(table, []).append((column, values))
    for table, checks in by_table.items():
        # SQLite cannot add a constraint to a table: batch mode copies it into a new one.
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column, values in checks:
                batch_op.create_check_constraint(f'ck_{table}_{column}', _sql_in(column, values))


def downgrade() -> None:
    for table, column, _ in reversed(CHECKS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f'ck_{table}_{column}', type_='check')
