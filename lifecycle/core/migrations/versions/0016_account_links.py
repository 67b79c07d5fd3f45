"""account links: invitations and password resets, single-use and expiring

Revision ID: 0016_account_links
Revises: 0013_personal
Create Date: 2026-12-04

`account_links` holds one row per invitation or password reset (`lifecycle.core.links`).
Its token is made when the message that carries it is delivered, and only the token's
SHA-256 is kept (`token_hash`, NULL until then): the outbox never holds the link.
"""
import sqlalchemy as sa
from alembic import op

revision = '0016_account_links'
down_revision = '0013_personal'
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


def downgrade() -> None:
    op.drop_index('ix_account_links_account', table_name='account_links')
    op.drop_table('account_links')
