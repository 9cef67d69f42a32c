"""Languages: the contact's language, list wording per language, the language each event saw.

``contacts.language`` is a BCP 47 tag (NULL: negotiate per request).
``list_translations`` holds a list's name, description and frequency in more
languages; ``list_notices.translations`` keeps every language's wording of a
notice version (JSON), so a version names all the words shown.
``consent_events.language`` is the language the contact saw; the event hash
covers it only when it is set, so events written before this migration keep
their hashes and ``verify-log`` passes on them unchanged. On SQLite the UPDATE
trigger names the columns it keeps, so it is re-created with ``language`` among
them (next to 0007's ``jurisdiction``); the PostgreSQL trigger compares whole
rows and covers the new column as it is.

Revision ID: 0009_languages
Revises: 0008_asking
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_languages"
down_revision = "0008_asking"
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
    "jurisdiction",
)
KEPT_AFTER = (*KEPT_BEFORE, "language")


def _sqlite_update_trigger(kept):
    op.execute("DROP TRIGGER consent_events_no_update")
    nulled = [f"NEW.{name} IS NULL" for name in ERASABLE]
    condition = " AND ".join(nulled + [f"NEW.{name} IS OLD.{name}" for name in kept])
    op.execute(
        "CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events "
        f"WHEN NOT ({condition}) BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
    )


def upgrade():
    op.add_column("contacts", sa.Column("language", sa.String(length=16), nullable=True))
    # ADD COLUMN rewrites no row, so the append-only triggers stay as they are.
    op.add_column("consent_events", sa.Column("language", sa.String(length=16), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_update_trigger(KEPT_AFTER)
    op.add_column("list_notices", sa.Column("translations", sa.Text(), nullable=True))
    op.create_table(
        "list_translations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("frequency", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["list_id"], ["lists.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("list_id", "language"),
    )


def downgrade():
    bind = op.get_bind()
    # Their hashes cover the language: without the column they would not verify.
    if bind.execute(sa.text("SELECT 1 FROM consent_events WHERE language IS NOT NULL")).first():
        raise RuntimeError(
            "Consent events record a language that their hashes cover; "
            "downgrading would leave chains that do not verify."
        )
    if bind.dialect.name == "sqlite":
        _sqlite_update_trigger(KEPT_BEFORE)
    op.drop_table("list_translations")
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy would lose consent_events' triggers.
    op.drop_column("list_notices", "translations")
    op.drop_column("consent_events", "language")
    op.drop_column("contacts", "language")
