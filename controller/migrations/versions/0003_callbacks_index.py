"""records: a partial index of the open callbacks instead of an index on every record's outcome

Only the callbacks list filters by outcome alone (outcome = 'callback', not done yet, oldest
first); every other query on records narrows by time or by gateway first. An index of just the
open callbacks serves that list and costs nothing on the other records: one b-tree less to
update per stored call.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

OPEN_CALLBACKS = sa.text("outcome = 'callback' AND callback_done_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.drop_index('ix_records_outcome')
    op.create_index('ix_records_open_callbacks', 'records', ['at'], sqlite_where=OPEN_CALLBACKS,
                    postgresql_where=OPEN_CALLBACKS)


def downgrade() -> None:
    op.drop_index('ix_records_open_callbacks', table_name='records')
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.create_index('ix_records_outcome', ['outcome'], unique=False)
