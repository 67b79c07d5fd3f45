"""consents: who agreed to which version of the portal's processing rules (issue 24)

Revision ID: 0014_consents
Revises: 0013_personal
Create Date: 2026-12-01

A society's contact or an expert agrees to the portal's processing rules (个人信息处理规则)
before using it; each agreement is a row (account, version, at, door), one per version, so
a new version of the rules asks everyone again and the old agreements stay on record.
"""
import sqlalchemy as sa
from alembic import op

revision = '0014_consents'
down_revision = '0013_personal'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'consents',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('account', sa.String(length=100), nullable=False),
        sa.Column('version', sa.String(length=32), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('door', sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(['account'], ['accounts.name'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account', 'version', name='uq_consent'),
    )


def downgrade() -> None:
    op.drop_table('consents')
