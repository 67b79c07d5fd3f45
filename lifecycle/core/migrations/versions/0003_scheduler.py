"""scheduler: deadline retry/notes, and APScheduler's job store table

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-25

The `apscheduler_jobs` table has exactly the shape APScheduler 3's
SQLAlchemyJobStore expects; creating it here keeps the whole schema under
Alembic (the job store's own `create(checkfirst=True)` then finds it).
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deadlines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('note', sa.Text(), nullable=False, server_default=''))
    op.create_table('apscheduler_jobs',
    sa.Column('id', sa.String(length=191), nullable=False),
    sa.Column('next_run_time', sa.Float(precision=25), nullable=True),
    sa.Column('job_state', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('apscheduler_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_apscheduler_jobs_next_run_time', ['next_run_time'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('apscheduler_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_apscheduler_jobs_next_run_time')
    op.drop_table('apscheduler_jobs')
    with op.batch_alter_table('deadlines', schema=None) as batch_op:
        batch_op.drop_column('note')
        batch_op.drop_column('next_attempt_at')
