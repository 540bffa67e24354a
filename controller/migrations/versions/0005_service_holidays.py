"""services.closed_on_holidays: whether holidays close a service's routes (DESIGN §5a calendars)

Until now a region-wide holiday closed every route, police 102 included. Each service now says
whether holidays close it; emergency numbers (101, 102, 103, 104, 112) never close, the rest keep
closing on holidays as before.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

EMERGENCY = ("101", "102", "103", "104", "112")


def upgrade() -> None:
    with op.batch_alter_table('services') as batch:
        batch.add_column(sa.Column('closed_on_holidays', sa.Boolean(), nullable=False, server_default=sa.true()))
    services = sa.table('services', sa.column('number', sa.String), sa.column('closed_on_holidays', sa.Boolean))
    op.execute(services.update().where(services.c.number.in_(EMERGENCY)).values(closed_on_holidays=False))


def downgrade() -> None:
    with op.batch_alter_table('services') as batch:
        batch.drop_column('closed_on_holidays')
