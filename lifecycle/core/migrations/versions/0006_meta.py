"""meta: a key/value table of facts about the database (the demo's marker)

Revision ID: 0006_meta
Revises: 0005
Create Date: 2026-11-26

`starfund demo` writes the key `demo` when it creates a database, and only
ever writes to a database that has it: a programme's database never does.
"""
import sqlalchemy as sa
from alembic import op

revision = '0006_meta'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('meta',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )


def downgrade() -> None:
    op.drop_table('meta')
