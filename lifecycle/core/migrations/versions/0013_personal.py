"""personal data: erasable subject keys, erasures, retention purges, who filed an objection

Revision ID: 0013_personal
Revises: 0012_audit_moves
Create Date: 2026-12-04

`subject_keys` holds one random key per person (subject) whose personal values the audit
trail carries sealed (lifecycle.core.sealing): destroying the row erases every sealed value of
that person from the trail without touching a hashed byte. `erasures` records each erasure
(`starfund person erase`), `purges` each day's retention purge (run once a day, by whichever
scheduler gets there first), and `objections.filed_account` the account that filed an
objection itself in the portal (NULL when an officer entered it for a member of the public).
"""
import sqlalchemy as sa
from alembic import op

revision = '0013_personal'
down_revision = '0012_audit_moves'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'subject_keys',
        sa.Column('subject', sa.String(length=120), nullable=False),
        sa.Column('wrapped', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('subject'))
    op.create_table(
        'erasures',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('person', sa.String(length=120), nullable=False),
        sa.Column('subjects', sa.JSON(), nullable=False),
        sa.Column('erased_at', sa.DateTime(), nullable=False),
        sa.Column('erased_by', sa.String(length=100), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('person', name='uq_erasures_person'))
    op.create_table(
        'purges',
        sa.Column('day', sa.String(length=10), nullable=False),
        sa.Column('ran_at', sa.DateTime(), nullable=False),
        sa.Column('counts', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('day'))
    with op.batch_alter_table('objections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('filed_account', sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('objections', schema=None) as batch_op:
        batch_op.drop_column('filed_account')
    op.drop_table('purges')
    op.drop_table('erasures')
    op.drop_table('subject_keys')
