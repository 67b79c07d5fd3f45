"""letters: decision reasons as codes; held messages edited; how a deadline ended

Revision ID: 0011_letters
Revises: 0010_payees
Create Date: 2026-11-26

`applications.reason_code` keeps the decision reason's code and parameters
(notifications.reasons, JSON text; "" for a reason written as plain text), so a
letter written after the move says it in the recipient's language.
`notifications.edited` holds the subject and body an administrator wrote for a
held message (`notify outbox edit`); delivery sends them instead of the template.
`deadlines.outcome` says how a fired deadline ended: fired, or skipped (a reminder
no longer useful); "" on rows fired before it existed (read as fired).
"""
import sqlalchemy as sa
from alembic import op

revision = '0011_letters'
down_revision = '0010_payees'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason_code', sa.Text(), nullable=False,
                                      server_default=''))
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('edited', sa.JSON(), nullable=True))
    with op.batch_alter_table('deadlines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('outcome', sa.String(length=16), nullable=False,
                                      server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('deadlines', schema=None) as batch_op:
        batch_op.drop_column('outcome')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_column('edited')
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_column('reason_code')
