"""Ask well, keep well: pauses, cadences, reconfirmations and leaving reasons.

Revision ID: 0008_asking
Revises: 0004_personal_digest
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_asking"
down_revision = "0007_jurisdiction"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("business_paused_until", sa.DateTime(), nullable=True))
    with op.batch_alter_table("lists") as batch:
        batch.add_column(sa.Column("cadences", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("paused_until", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("cadence", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("reconfirmation_sent_at", sa.DateTime(), nullable=True))
    op.create_table(
        "leaving_reasons",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("consent_events.id"), nullable=False),
        sa.Column("contact_id", sa.Integer(), sa.ForeignKey("contacts.id"), nullable=False),
        sa.Column("list_id", sa.Integer(), sa.ForeignKey("lists.id"), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("ix_leaving_reasons_contact_id", "leaving_reasons", ["contact_id"])
    op.create_index("ix_leaving_reasons_list_id", "leaving_reasons", ["list_id"])


def downgrade():
    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+ and PostgreSQL): a batch
    # rebuild would drop and recreate tables that other tables' foreign keys name.
    op.drop_index("ix_leaving_reasons_list_id", table_name="leaving_reasons")
    op.drop_index("ix_leaving_reasons_contact_id", table_name="leaving_reasons")
    op.drop_table("leaving_reasons")
    for table, column in (
        ("subscriptions", "reconfirmation_sent_at"),
        ("subscriptions", "cadence"),
        ("subscriptions", "paused_until"),
        ("lists", "cadences"),
        ("contacts", "business_paused_until"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
