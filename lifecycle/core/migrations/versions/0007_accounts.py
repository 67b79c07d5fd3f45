"""accounts, login tokens, and the audit events' wall-clock time and real issuer

Revision ID: 0007_accounts
Revises: 0006_meta
Create Date: 2026-11-26

A database made before accounts existed has none: `starfund init` on it creates the
first account and the audit key. If it holds a trail already, its mode is set here:
`simulation` if the demo made it, else `live` (the safe side: `--now` is refused). A new,
empty database gets its mode from `starfund init` (or the demo).
"""
import sqlalchemy as sa
from alembic import op

revision = '0007_accounts'
down_revision = '0006_meta'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('roles', sa.String(length=200), nullable=False),
    sa.Column('society_id', sa.String(length=64), nullable=True),
    sa.Column('expert_id', sa.String(length=64), nullable=True),
    sa.Column('email', sa.String(length=300), nullable=True),
    sa.Column('password_hash', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('disabled_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['expert_id'], ['experts.id'], ),
    sa.ForeignKeyConstraint(['society_id'], ['societies.id'], ),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('account_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('account', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account'], ['accounts.name'], ),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_index('ix_account_tokens_account', 'account_tokens', ['account'], unique=False)
    with op.batch_alter_table('audit_events') as batch:
        batch.add_column(sa.Column('written_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('by', sa.String(length=100), nullable=True))
    with op.batch_alter_table('audit_head') as batch:
        batch.add_column(sa.Column('mac', sa.String(length=64), nullable=True))
    meta = sa.table('meta', sa.column('key', sa.String), sa.column('value', sa.Text))
    bind = op.get_bind()
    demo = bind.execute(sa.select(meta.c.value).where(meta.c.key == 'demo')).first()
    used = bind.execute(sa.text('SELECT 1 FROM audit_events LIMIT 1')).first()
    if used and bind.execute(sa.select(meta.c.value).where(meta.c.key == 'mode')).first() is None:
        op.bulk_insert(meta, [{'key': 'mode', 'value': 'simulation' if demo else 'live'}])


def downgrade() -> None:
    with op.batch_alter_table('audit_head') as batch:
        batch.drop_column('mac')
    with op.batch_alter_table('audit_events') as batch:
        batch.drop_column('by')
        batch.drop_column('written_at')
    op.drop_index('ix_account_tokens_account', table_name='account_tokens')
    op.drop_table('account_tokens')
    op.drop_table('accounts')
