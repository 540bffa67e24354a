"""secret_audit: every hand-out of a gateway's key and MQTT password (who, when, which gateway)

Secrets leave the controller only at registration and at a key rotation (rotate-key, or a bundle
asked for with ?rotate=true); each of those writes one row here.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'secret_audit',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.BigInteger(), nullable=False),
        sa.Column('actor', sa.String(length=80), nullable=False),
        sa.Column('gateway_id', sa.String(length=32), nullable=False),
        sa.Column('action', sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_secret_audit_at', 'secret_audit', ['at'])
    op.create_index('ix_secret_audit_gateway_id', 'secret_audit', ['gateway_id'])


def downgrade() -> None:
    op.drop_index('ix_secret_audit_gateway_id', table_name='secret_audit')
    op.drop_index('ix_secret_audit_at', table_name='secret_audit')
    op.drop_table('secret_audit')
