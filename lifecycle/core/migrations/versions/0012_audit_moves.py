"""audit moves: the index `audit verify` reads each application's last move from

Revision ID: 0012_audit_moves
Revises: 0011_letters
Create Date: 2026-11-26

`ix_audit_moves` holds (application_id, seq, to_state) of the events that move an
application (a partial index: the trail's other events, most of it, are not in
it), so `audit verify` finds every application's last state and creation by one
ordered scan of it instead of reading the whole trail or looking each up.
"""
import sqlalchemy as sa
from alembic import op

revision = '0012_audit_moves'
down_revision = '0011_letters'
branch_labels = None
depends_on = None

MOVES = sa.text("application_id IS NOT NULL AND to_state IS NOT NULL")


def upgrade() -> None:
    op.create_index('ix_audit_moves', 'audit_events', ['application_id', 'seq', 'to_state'],
                    unique=False, sqlite_where=MOVES, postgresql_where=MOVES)


def downgrade() -> None:
    op.drop_index('ix_audit_moves', table_name='audit_events')
