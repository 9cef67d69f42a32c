"""ESP feedback: undeliverable addresses, soft-bounce counts, provider event ids.

Revision ID: 0005_feedback
Revises: 0004_personal_digest
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_feedback"
down_revision = "0004_personal_digest"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("addresses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("undeliverable_since", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("undeliverable_reason", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("soft_bounces", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "provider_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider", "event_id"),
    )


def downgrade():
    op.drop_table("provider_events")
    with op.batch_alter_table("addresses", schema=None) as batch_op:
        batch_op.drop_column("soft_bounces")
        batch_op.drop_column("undeliverable_reason")
        batch_op.drop_column("undeliverable_since")
