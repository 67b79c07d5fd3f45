"""review: panel decisions, reassignment slots, objection evidence

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'panel_decisions',
        sa.Column('application_id', sa.String(length=64), nullable=False),
        sa.Column('call_id', sa.String(length=64), nullable=False),
        sa.Column('score', sa.Float(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('decided_by', sa.String(length=100), nullable=False),
        sa.Column('decided_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['application_id'], ['applications.id'], ),
        sa.ForeignKeyConstraint(['call_id'], ['calls.id'], ),
        sa.PrimaryKeyConstraint('application_id'),
    )
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('replaces', sa.String(length=64), nullable=True))
    with op.batch_alter_table('objections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('evidence_data', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('objections', schema=None) as batch_op:
        batch_op.drop_column('evidence_data')
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_column('replaces')
    op.drop_table('panel_decisions')
