"""operations: the scheduler's heartbeats, and earlier years' results brought in

Revision ID: 0015_operations
Revises: 0014_consents
Create Date: 2026-12-06

`heartbeats` has one row per running scheduler (`scheduler run`), written at each of its
passes: the portal's `/healthz` and `/metrics` read how long ago a scheduler last ran.
`past_results` holds the results of years before starfund (`starfund history import`): per
society and year, a project's grade or termination, or the star level and model society title
a star rating gave, with the file they came from; the rules that read history (the bar after
a failed project, steady support, model societies, star changes) read them beside the calls
run inside starfund.
"""
import sqlalchemy as sa
from alembic import op

revision = '0015_operations'
down_revision = '0014_consents'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'heartbeats',
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('beat_at', sa.DateTime(), nullable=False),
        sa.Column('last_pass_at', sa.DateTime(), nullable=True),
        sa.Column('stopped_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('name'))
    op.create_table(
        'past_results',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('society_id', sa.String(length=64), nullable=False),
        sa.Column('year', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=64), nullable=False),
        sa.Column('project', sa.String(length=64), nullable=False),
        sa.Column('title', sa.String(length=500), nullable=False),
        sa.Column('grade', sa.String(length=16), nullable=True),
        sa.Column('terminated', sa.Boolean(), nullable=False),
        sa.Column('stars', sa.Integer(), nullable=True),
        sa.Column('model', sa.Boolean(), nullable=False),
        sa.Column('source', sa.String(length=255), nullable=False),
        sa.Column('source_sha256', sa.String(length=64), nullable=False),
        sa.Column('imported_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['society_id'], ['societies.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('society_id', 'year', 'kind', 'project', name='uq_past_result'))
    op.create_index('ix_past_results_year', 'past_results', ['kind', 'year'])


def downgrade() -> None:
    op.drop_index('ix_past_results_year', table_name='past_results')
    op.drop_table('past_results')
    op.drop_table('heartbeats')
