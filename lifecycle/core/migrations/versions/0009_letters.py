"""letters: an application's decision reason as a code; outbox messages edited before release

Revision ID: 0009_letters
Revises: 0008_classes
Create Date: 2026-11-26

`applications.reason_code` keeps the decision reason's code and parameters
(notifications.reasons, JSON text; "" for a reason written as plain text), so a
letter written after the move says it in the recipient's language.
`notifications.edited` holds the subject and body an administrator wrote for a
held message (`notify outbox edit`); delivery sends them instead of the template.
"""
import sqlalchemy as sa
from alembic import op

revision = '0009_letters'
down_revision = '0008_classes'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason_code', sa.Text(), nullable=False,
                                      server_default=''))
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('edited', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_column('edited')
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_column('reason_code')
