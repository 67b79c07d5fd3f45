"""payee details of societies, payment vouchers, and money recovered (issue 13)

Revision ID: 0010_payees
Revises: 0009_portal
Create Date: 2026-11-26

A society carries the account its grants are paid to (account name, bank,
account number), imported with the rest of the society file. Each paid
instalment keeps the voucher number finance recorded it under. `recoveries`
holds the money a society paid back on a terminated project (what settles
"to recover").
"""
import sqlalchemy as sa
from alembic import op

revision = '0010_payees'
down_revision = '0009_portal'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('societies', schema=None) as batch_op:
        for column in ('payee_name', 'payee_bank', 'payee_account'):
            batch_op.add_column(sa.Column(column, sa.String(length=200), nullable=False,
                                          server_default=''))
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('voucher', sa.String(length=64), nullable=False,
                                      server_default=''))
    op.create_table(
        'recoveries',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('call_id', sa.String(length=64), nullable=False),
        sa.Column('application_id', sa.String(length=64), nullable=False),
        sa.Column('amount', sa.Integer(), nullable=False),
        sa.Column('voucher', sa.String(length=64), nullable=False),
        sa.Column('recovered_at', sa.DateTime(), nullable=False),
        sa.Column('recorded_by', sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(['application_id'], ['applications.id'], ),
        sa.ForeignKeyConstraint(['call_id'], ['calls.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_recoveries_call', 'recoveries', ['call_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_recoveries_call', table_name='recoveries')
    op.drop_table('recoveries')
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('voucher')
    with op.batch_alter_table('societies', schema=None) as batch_op:
        for column in ('payee_account', 'payee_bank', 'payee_name'):
            batch_op.drop_column(column)
