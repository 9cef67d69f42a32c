"""Sessions that end, login backoff, and outbox messages that fail for good.

- ``admin_users.session_version``: part of the Flask-Login id in the session
  cookie; logout and a password change bump it, so every copy of an older
  session cookie stops working.
- ``login_throttles``: failed admin logins per address and per IP, with the time
  until which the next attempt waits (kept in the database, so every worker
  process sees the same count and a restart does not forget it).
- ``outbox.failed_at``: a message the mail server refused for good (5xx) or
  that failed too often; it is never retried and the admin dashboard lists it.

Revision ID: 0006_hardening
Revises: 0004_personal_digest
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_hardening"
down_revision = "0005_feedback"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("admin_users") as batch:
        batch.add_column(
            sa.Column("session_version", sa.Integer(), nullable=False, server_default="1")
        )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("failed_at", sa.DateTime(), nullable=True))
    op.create_table(
        "login_throttles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("blocked_until", sa.DateTime(), nullable=True),
        sa.Column("last_failure_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )


def downgrade():
    op.drop_table("login_throttles")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("failed_at")
    with op.batch_alter_table("admin_users") as batch:
        batch.drop_column("session_version")
