"""the portal: attachments, score drafts, login attempts (issue 12)

Revision ID: 0009_portal
Revises: 0008_classes
Create Date: 2026-11-26

Files a society uploads with a declaration (申报书, budget sheet) are kept in the
database with their SHA-256, never in a served folder; an expert's unsubmitted
scores are a draft beside the assignment; failed logins are counted per account
and per address so the portal can slow a guesser down.
"""
import sqlalchemy as sa
from alembic import op

revision = '0009_portal'
down_revision = '0008_classes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'attachments',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('call_id', sa.String(length=64), nullable=False),
        sa.Column('application_id', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=64), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('content_type', sa.String(length=100), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column('uploaded_by', sa.String(length=100), nullable=False),
        sa.Column('uploaded_at', sa.DateTime(), nullable=False),
        sa.Column('current', sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.ForeignKeyConstraint(['application_id'], ['applications.id'], ),
        sa.ForeignKeyConstraint(['call_id'], ['calls.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_attachments_application', 'attachments', ['application_id', 'kind'])
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('draft', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('draft_at', sa.DateTime(), nullable=True))
    op.create_table(
        'login_attempts',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('account', sa.String(length=100), nullable=False),
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_login_attempts_account', 'login_attempts', ['account', 'at'])
    op.create_index('ix_login_attempts_address', 'login_attempts', ['address', 'at'])


def downgrade() -> None:
    op.drop_index('ix_login_attempts_address', table_name='login_attempts')
    op.drop_index('ix_login_attempts_account', table_name='login_attempts')
    op.drop_table('login_attempts')
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_column('draft_at')
        batch_op.drop_column('draft')
    op.drop_index('ix_attachments_application', table_name='attachments')
    op.drop_table('attachments')
