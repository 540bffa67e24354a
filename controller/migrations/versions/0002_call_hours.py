"""hourly call aggregates, filled from the records already stored; one index less on records

records.gateway_id had an index of its own, though the unique key (gateway_id, store_id, seq)
already serves every lookup by gateway: one b-tree less to update per stored record.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

OUTCOMES = ("answered", "abandoned", "failed", "rejected", "after_hours", "callback", "denied")


def upgrade() -> None:
    op.create_table(
        'call_hours',
        sa.Column('gateway_id', sa.String(length=32), nullable=False),
        sa.Column('hour', sa.BigInteger(), nullable=False),
        sa.Column('route', sa.String(length=48), nullable=False),
        sa.Column('target', sa.String(length=48), nullable=False),
        sa.Column('offered', sa.Integer(), nullable=False),
        *[sa.Column(o, sa.Integer(), nullable=False) for o in OUTCOMES],
        sa.Column('talk_s', sa.BigInteger(), nullable=False),
        sa.Column('ring_s', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('gateway_id', 'hour', 'route', 'target'),
    )
    op.create_index('ix_call_hours_hour', 'call_hours', ['hour'])
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.drop_index('ix_records_gateway_id')
    counts = ", ".join(f"SUM(CASE WHEN outcome = '{o}' THEN 1 ELSE 0 END)" for o in OUTCOMES)
    op.execute(
        "INSERT INTO call_hours (gateway_id, hour, route, target, offered, " + ", ".join(OUTCOMES)
        + ", talk_s, ring_s) SELECT gateway_id, (at / 3600) * 3600, COALESCE(route, ''), COALESCE(target, ''), "
        "COUNT(*), " + counts + ", COALESCE(SUM(talk_s), 0), COALESCE(SUM(ring_s), 0) "
        "FROM records WHERE kind = 'call' AND at IS NOT NULL "
        "GROUP BY gateway_id, (at / 3600) * 3600, COALESCE(route, ''), COALESCE(target, '')")


def downgrade() -> None:
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.create_index('ix_records_gateway_id', ['gateway_id'], unique=False)
    op.drop_index('ix_call_hours_hour', table_name='call_hours')
    op.drop_table('call_hours')
