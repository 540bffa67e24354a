"""Menus, operators' outbound calls and probe schedules (DESIGN §5a); records keep a call's menu key

- `menus`: a service's menu for one city or every city (options as JSON: key -> label, targets,
  strategy, fallback), compiled into the tables' `menus` and the routes' `menu`;
- `probe_schedules`: probe calls per centre (no row = off), compiled into the tables' `probes`;
- `outbound_calls`: who asked which gateway to call whom, and how the call ended;
- records: `option` (the menu key a call used: reports group by it), `callback_attempts` (a
  call-back's calls that did not reach the citizen), and `outcome` wide enough for an outbound
  record's `citizen_no_answer`; a partial index of the probe records (probes in a row per gateway
  and centre).

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

PROBES = sa.text("kind = 'probe'")


def upgrade() -> None:
    op.create_table(
        'menus',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('name', sa.String(48), nullable=False, unique=True),
        sa.Column('service_id', sa.Integer(), sa.ForeignKey('services.id'), nullable=False),
        sa.Column('city_id', sa.Integer(), sa.ForeignKey('cities.id'), nullable=True),
        sa.Column('prompt', sa.String(64), nullable=False),
        sa.Column('timeout_s', sa.Integer(), nullable=False),
        sa.Column('tries', sa.Integer(), nullable=False),
        sa.Column('default_option', sa.String(1), nullable=False),
        sa.Column('options', sa.JSON(), nullable=False),
    )
    op.create_table(
        'probe_schedules',
        sa.Column('centre_id', sa.Integer(), sa.ForeignKey('centres.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('every_s', sa.Integer(), nullable=False),
        sa.Column('hours', sa.JSON(), nullable=True),
        sa.Column('alert_after', sa.Integer(), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
    )
    op.create_table(
        'outbound_calls',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('command_id', sa.String(64), nullable=False, unique=True),
        sa.Column('gateway_id', sa.String(32), nullable=False, index=True),
        sa.Column('agent', sa.String(16), nullable=False),
        sa.Column('citizen', sa.String(16), nullable=False),
        sa.Column('via', sa.String(16), nullable=True),
        sa.Column('callback_id', sa.BigInteger(), nullable=True),
        sa.Column('requested_by', sa.String(64), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('outcome', sa.String(24), nullable=True),
        sa.Column('ended_at', sa.BigInteger(), nullable=True),
    )
    with op.batch_alter_table('records') as batch:
        batch.alter_column('outcome', type_=sa.String(24), existing_type=sa.String(16), existing_nullable=True)
        batch.add_column(sa.Column('option', sa.String(8), nullable=True))
        batch.add_column(sa.Column('callback_attempts', sa.Integer(), nullable=False, server_default=sa.text('0')))
    op.create_index('ix_records_probes', 'records', ['gateway_id', 'target', 'at'], sqlite_where=PROBES,
                    postgresql_where=PROBES)


def downgrade() -> None:
    op.drop_index('ix_records_probes', table_name='records')
    with op.batch_alter_table('records') as batch:
        batch.drop_column('callback_attempts')
        batch.drop_column('option')
        batch.alter_column('outcome', type_=sa.String(16), existing_type=sa.String(24), existing_nullable=True)
    op.drop_table('outbound_calls')
    op.drop_table('probe_schedules')
    op.drop_table('menus')
