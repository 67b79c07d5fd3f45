"""account links and second factors: invitations, password resets, TOTP

Revision ID: 0016_account_links
Revises: 0015_operations
Create Date: 2026-12-04

`account_links` holds one row per invitation or password reset (`lifecycle.core.links`).
Its token is made when the message that carries it is delivered, and only the token's
SHA-256 is kept (`token_hash`, NULL until then): the outbox never holds the link.
`accounts.totp` holds an account's TOTP secret sealed under a key derived from the chain
key (`lifecycle.core.totp`), `totp_step` the last time step used (no code twice), and
`recovery_codes` the SHA-256 of its unused recovery codes; `account_tokens.last_seen_at`
when a portal session was last used (its idle timeout).
"""
import sqlalchemy as sa
from alembic import op

revision = '0016_account_links'
down_revision = '0015_operations'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'account_links',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('account', sa.String(length=100), nullable=False),
        sa.Column('purpose', sa.String(length=16), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.Column('used_at', sa.DateTime(), nullable=True),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(['account'], ['accounts.name']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash', name='uq_account_links_token'))
    op.create_index('ix_account_links_account', 'account_links', ['account', 'purpose'])
    with op.batch_alter_table('account_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_seen_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('totp', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('totp_step', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('recovery_codes', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('recovery_codes')
        batch_op.drop_column('totp_step')
        batch_op.drop_column('totp')
    with op.batch_alter_table('account_tokens', schema=None) as batch_op:
        batch_op.drop_column('last_seen_at')
    op.drop_index('ix_account_links_account', table_name='account_links')
    op.drop_table('account_links')
