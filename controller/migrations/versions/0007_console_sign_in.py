"""The admin console: users sign in with a password, browser sessions, acknowledged alerts, call-back notes

- users: `password_hash` (argon2; null = API tokens only), `disabled` (no sign-in, no token);
- `web_sessions`: a signed-in browser, by the SHA-256 of its cookie, with its CSRF token and expiry;
- alerts: `acknowledged_at`, `acknowledged_by` (someone is on it; resolving is still separate);
- `callback_notes`: what operators wrote about a call-back.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('password_hash', sa.String(255), nullable=True))
        batch.add_column(sa.Column('disabled', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        'web_sessions',
        sa.Column('sha256', sa.String(64), primary_key=True),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('users.id', ondelete='CASCADE'), nullable=False,
                  index=True),
        sa.Column('csrf', sa.String(64), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('expires_at', sa.BigInteger(), nullable=False),
    )
    with op.batch_alter_table('alerts') as batch:
        batch.add_column(sa.Column('acknowledged_at', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('acknowledged_by', sa.String(64), nullable=True))
    op.create_table(
        'callback_notes',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('record_id', sa.BigInteger(), nullable=False, index=True),
        sa.Column('at', sa.BigInteger(), nullable=False),
        sa.Column('author', sa.String(64), nullable=False),
        sa.Column('text', sa.String(500), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('callback_notes')
    with op.batch_alter_table('alerts') as batch:
        batch.drop_column('acknowledged_by')
        batch.drop_column('acknowledged_at')
    op.drop_table('web_sessions')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('disabled')
        batch.drop_column('password_hash')
