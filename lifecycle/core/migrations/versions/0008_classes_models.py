"""classes of society, and model societies (issue 15)

Revision ID: 0008_classes
Revises: 0007_accounts
Create Date: 2026-11-27

A society carries a class (理科, 工科, ... whatever a programme configures); an
application keeps the class its society had when it was declared, so a call's
class rules (budget shares, indicator sheets, reward pools) never move an
application from one class to another half-way. `model_societies` holds the
model society (示范学会) titles star calls name, with their validity and end.
"""
import sqlalchemy as sa
from alembic import op

revision = '0008_classes'
down_revision = '0007_accounts'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('societies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('society_class', sa.String(length=64), nullable=False,
                                      server_default=''))
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('society_class', sa.String(length=64), nullable=False,
                                      server_default=''))
    op.create_table(
        'model_societies',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('society_id', sa.String(length=64), nullable=False),
        sa.Column('call_id', sa.String(length=64), nullable=False),
        sa.Column('application_id', sa.String(length=64), nullable=False),
        sa.Column('rule', sa.Text(), nullable=False),
        sa.Column('named_at', sa.DateTime(), nullable=False),
        sa.Column('valid_until', sa.DateTime(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('ended_at', sa.DateTime(), nullable=True),
        sa.Column('end_reason', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['application_id'], ['applications.id'], ),
        sa.ForeignKeyConstraint(['call_id'], ['calls.id'], ),
        sa.ForeignKeyConstraint(['society_id'], ['societies.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_model_societies_society', 'model_societies', ['society_id', 'named_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_model_societies_society', table_name='model_societies')
    op.drop_table('model_societies')
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_column('society_class')
    with op.batch_alter_table('societies', schema=None) as batch_op:
        batch_op.drop_column('society_class')
