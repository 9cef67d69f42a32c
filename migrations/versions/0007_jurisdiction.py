"""Jurisdiction and subscriber type; list flags; the end of an ongoing relationship.

Adds ``contacts.jurisdiction`` (ISO 3166-1 alpha-2), ``addresses.subscriber_type``
(individual / corporate), ``lists.role_relevant`` and ``lists.similar_products``
(also on ``list_notices``: a change of flags is a new notice version),
``subscriptions.relationship_ended_on`` and ``consent_events.jurisdiction``.

Existing events get no jurisdiction (NULL). The event hash covers the
jurisdiction only when it is set (see ``ledger.py``), so every existing chain
verifies unchanged and nothing is re-chained. On SQLite the UPDATE trigger names
the columns it keeps, so it is re-created with ``jurisdiction`` among them; the
PostgreSQL trigger compares whole rows and covers the new column as it is.

Revision ID: 0007_jurisdiction
Revises: 0004_personal_digest
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_jurisdiction"
down_revision = "0006_hardening"
branch_labels = None
depends_on = None

MESSAGE = "consent_events is append-only"
ERASABLE = ("ip", "user_agent", "evidence", "detail", "personal_salt")
KEPT_BEFORE = (
    "id",
    "contact_id",
    "list_id",
    "request_id",
    "action",
    "from_state",
    "to_state",
    "basis",
    "source",
    "channel",
    "actor",
    "occurred_at",
    "notice_version",
    "prev_hash",
    "hash",
    "personal_digest",
)
KEPT_AFTER = (*KEPT_BEFORE, "jurisdiction")


def _sqlite_update_trigger(kept):
    op.execute("DROP TRIGGER consent_events_no_update")
    nulled = [f"NEW.{name} IS NULL" for name in ERASABLE]
    condition = " AND ".join(nulled + [f"NEW.{name} IS OLD.{name}" for name in kept])
    op.execute(
        "CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events "
        f"WHEN NOT ({condition}) BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
    )


def upgrade():
    op.add_column("contacts", sa.Column("jurisdiction", sa.String(2), nullable=True))
    op.add_column("addresses", sa.Column("subscriber_type", sa.String(16), nullable=True))
    for table in ("lists", "list_notices"):
        for flag in ("role_relevant", "similar_products"):
            op.add_column(
                table, sa.Column(flag, sa.Boolean, nullable=False, server_default=sa.false())
            )
    op.add_column("subscriptions", sa.Column("relationship_ended_on", sa.Date, nullable=True))
    # ADD COLUMN rewrites no row, so the append-only triggers stay as they are.
    op.add_column("consent_events", sa.Column("jurisdiction", sa.String(2), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_update_trigger(KEPT_AFTER)


def downgrade():
    bind = op.get_bind()
    # Their hashes cover the jurisdiction: without the column they would not verify.
    if bind.execute(sa.text("SELECT 1 FROM consent_events WHERE jurisdiction IS NOT NULL")).first():
        raise RuntimeError(
            "Consent events record a jurisdiction that their hashes cover; "
            "downgrading would leave chains that do not verify."
        )
    if bind.dialect.name == "sqlite":
        _sqlite_update_trigger(KEPT_BEFORE)
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy of the table would lose its triggers.
    op.drop_column("consent_events", "jurisdiction")
    op.drop_column("subscriptions", "relationship_ended_on")
    for table in ("list_notices", "lists"):
        op.drop_column(table, "similar_products")
        op.drop_column(table, "role_relevant")
    op.drop_column("addresses", "subscriber_type")
    op.drop_column("contacts", "jurisdiction")
