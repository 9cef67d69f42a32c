"""Languages: the contact's language, list wording per language, the language each event saw.

``contacts.language`` is a BCP 47 tag (NULL: negotiate per request).
``list_translations`` holds a list's name, description and frequency in more
languages; ``list_notices.translations`` keeps every language's wording of a
notice version (JSON), so a version names all the words shown.
``consent_events.language`` is the language the contact saw; the event hash
covers it only when it is set, so events written before this migration keep
their hashes and ``verify-log`` passes on them unchanged.

Revision ID: 0009_languages
Revises: 0004_personal_digest
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_languages"
down_revision = "0004_personal_digest"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("contacts", sa.Column("language", sa.String(length=16), nullable=True))
    op.add_column("consent_events", sa.Column("language", sa.String(length=16), nullable=True))
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
    op.drop_table("list_translations")
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy would lose consent_events' triggers.
    op.drop_column("list_notices", "translations")
    op.drop_column("consent_events", "language")
    op.drop_column("contacts", "language")
