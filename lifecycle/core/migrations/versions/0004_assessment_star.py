"""assessment checkpoints, payments, star rating

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checkpoint', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('star_level', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('amount_to_recover', sa.Integer(), nullable=True))
    op.create_table(
        'payments',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('call_id', sa.String(length=64), nullable=False),
        sa.Column('application_id', sa.String(length=64), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('label', sa.String(length=200), nullable=False),
        sa.Column('release', sa.String(length=32), nullable=False),
        sa.Column('percent', sa.Float(), nullable=False),
        sa.Column('original_amount', sa.Integer(), nullable=False),
        sa.Column('amount', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('due_at', sa.DateTime(), nullable=True),
        sa.Column('released_at', sa.DateTime(), nullable=True),
        sa.Column('paid_at', sa.DateTime(), nullable=True),
        sa.Column('note', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['application_id'], ['applications.id'], ),
        sa.ForeignKeyConstraint(['call_id'], ['calls.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('application_id', 'seq', name='uq_payment_seq'),
    )
    op.create_index('ix_payments_call_status', 'payments', ['call_id', 'status'], unique=False)
    op.create_table(
        'assessment_records',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('call_id', sa.String(length=64), nullable=False),
        sa.Column('application_id', sa.String(length=64), nullable=False),
        sa.Column('checkpoint', sa.String(length=32), nullable=False),
        sa.Column('report_file', sa.String(length=300), nullable=True),
        sa.Column('report_sha256', sa.String(length=64), nullable=True),
        sa.Column('report_size', sa.Integer(), nullable=True),
        sa.Column('report_data', sa.LargeBinary(), nullable=True),
        sa.Column('report_at', sa.DateTime(), nullable=True),
        sa.Column('report_late', sa.Boolean(), nullable=True),
        sa.Column('score', sa.Float(), nullable=True),
        sa.Column('grade', sa.String(length=16), nullable=True),
        sa.Column('graders', sa.JSON(), nullable=True),
        sa.Column('graded_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['application_id'], ['applications.id'], ),
        sa.ForeignKeyConstraint(['call_id'], ['calls.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('application_id', 'checkpoint', name='uq_assessment_checkpoint'),
    )
    op.create_index('ix_assessment_records_call', 'assessment_records', ['call_id'], unique=False)
    op.create_table(
        'star_scores',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('call_id', sa.String(length=64), nullable=False),
        sa.Column('application_id', sa.String(length=64), nullable=False),
        sa.Column('indicator', sa.String(length=32), nullable=False),
        sa.Column('self_score', sa.Float(), nullable=False),
        sa.Column('checked_score', sa.Float(), nullable=True),
        sa.Column('final_score', sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(['application_id'], ['applications.id'], ),
        sa.ForeignKeyConstraint(['call_id'], ['calls.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('application_id', 'indicator', name='uq_star_score'),
    )
    op.create_index('ix_star_scores_call', 'star_scores', ['call_id'], unique=False)
    op.create_table(
        'star_reviews',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('call_id', sa.String(length=64), nullable=False),
        sa.Column('application_id', sa.String(length=64), nullable=False),
        sa.Column('expert_id', sa.String(length=64), nullable=False),
        sa.Column('scores', sa.JSON(), nullable=False),
        sa.Column('total', sa.Float(), nullable=False),
        sa.Column('submitted_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['application_id'], ['applications.id'], ),
        sa.ForeignKeyConstraint(['call_id'], ['calls.id'], ),
        sa.ForeignKeyConstraint(['expert_id'], ['experts.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('application_id', 'expert_id', name='uq_star_review'),
    )
    op.create_index('ix_star_reviews_call', 'star_reviews', ['call_id'], unique=False)
    op.create_table(
        'stars',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('society_id', sa.String(length=64), nullable=False),
        sa.Column('call_id', sa.String(length=64), nullable=False),
        sa.Column('application_id', sa.String(length=64), nullable=False),
        sa.Column('level', sa.Integer(), nullable=False),
        sa.Column('total', sa.Float(), nullable=False),
        sa.Column('reward', sa.Integer(), nullable=False),
        sa.Column('change', sa.String(length=16), nullable=False),
        sa.Column('previous_level', sa.Integer(), nullable=True),
        sa.Column('awarded_at', sa.DateTime(), nullable=False),
        sa.Column('valid_until', sa.DateTime(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('ended_at', sa.DateTime(), nullable=True),
        sa.Column('end_kind', sa.String(length=16), nullable=False),
        sa.Column('end_reason', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['application_id'], ['applications.id'], ),
        sa.ForeignKeyConstraint(['call_id'], ['calls.id'], ),
        sa.ForeignKeyConstraint(['society_id'], ['societies.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_stars_society', 'stars', ['society_id', 'awarded_at'], unique=False)
    op.create_index('ix_stars_call', 'stars', ['call_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_stars_call', table_name='stars')
    op.drop_index('ix_stars_society', table_name='stars')
    op.drop_table('stars')
    op.drop_index('ix_star_reviews_call', table_name='star_reviews')
    op.drop_table('star_reviews')
    op.drop_index('ix_star_scores_call', table_name='star_scores')
    op.drop_table('star_scores')
    op.drop_index('ix_assessment_records_call', table_name='assessment_records')
    op.drop_table('assessment_records')
    op.drop_index('ix_payments_call_status', table_name='payments')
    op.drop_table('payments')
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_column('amount_to_recover')
        batch_op.drop_column('star_level')
        batch_op.drop_column('checkpoint')
