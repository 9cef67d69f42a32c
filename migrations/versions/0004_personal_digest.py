"""Personal fields of consent events behind a salted digest; erasure may null them.

The event hash now covers ``personal_digest`` (sha256 of a random salt and the
IP, user agent, evidence and detail) instead of those four fields, so erasure
can set them and the salt to NULL while every chain still verifies. Existing
events get a salt and a digest and are re-chained in the new canonical form,
after their chains are checked in the old one: a log that does not verify is
refused rather than laundered into one that does.

The triggers now allow exactly one UPDATE: the four personal fields and the
salt set to NULL with every other column unchanged. DELETE stays refused.

Revision ID: 0004_personal_digest
Revises: 0003
"""

import hashlib
import json
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0004_personal_digest"
down_revision = "0003"
branch_labels = None
depends_on = None

MESSAGE = "consent_events is append-only"
PERSONAL = ("ip", "user_agent", "evidence", "detail")
ERASABLE = (*PERSONAL, "personal_salt")
COMMON = (
    "contact",
    "list",
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
)
# Canonical forms before (0002) and after this revision; copied here on purpose,
# so this migration keeps working whatever ledger.py becomes.
FIELDS_BEFORE = (*COMMON, *PERSONAL)
FIELDS_AFTER = (*COMMON, "personal_digest")
# Every column the UPDATE trigger keeps as it was (SQLite names them one by one).
KEPT_COLUMNS = (
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

contacts = sa.table(
    "contacts",
    sa.column("id", sa.Integer),
    sa.column("public_id", sa.String),
    sa.column("chain_head", sa.String),
)
lists = sa.table("lists", sa.column("id", sa.Integer), sa.column("slug", sa.String))
events = sa.table(
    "consent_events",
    *(
        sa.column(name, sa.DateTime if name == "occurred_at" else sa.String)
        for name in ("request_id", "action", "from_state", "to_state", "basis", "source")
        + ("channel", "actor", "occurred_at", "ip", "user_agent", "evidence", "detail")
        + ("prev_hash", "hash", "personal_salt", "personal_digest")
    ),
    sa.column("id", sa.Integer),
    sa.column("contact_id", sa.Integer),
    sa.column("list_id", sa.Integer),
    sa.column("notice_version", sa.Integer),
)


def _json(values, names):
    return json.dumps(
        {name: values.get(name) for name in names},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _hash(values, names):
    text = (values.get("prev_hash") or "") + _json(values, names)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _chains(bind, with_digest=True):
    """Each contact with its events (as dicts in hashing form), one contact at a time."""
    columns = [
        column
        for column in events.c
        if with_digest or column.name not in ("personal_salt", "personal_digest")
    ]
    for contact in bind.execute(sa.select(contacts).order_by(contacts.c.id)).all():
        rows = bind.execute(
            sa.select(*columns, lists.c.slug)
            .outerjoin(lists, lists.c.id == events.c.list_id)
            .where(events.c.contact_id == contact.id)
            .order_by(events.c.id)
        ).all()
        values = []
        for row in rows:
            value = dict(row._mapping)
            value.update(
                contact=contact.public_id,
                list=row.slug,
                occurred_at=row.occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            )
            values.append(value)
        yield contact, values


def _verify(bind, fields):
    """Refuse to re-chain a log that does not verify in its current form."""
    for contact, chain in _chains(bind, with_digest="personal_digest" in fields):
        previous = None
        for values in chain:
            if values["prev_hash"] != previous or _hash(values, fields) != values["hash"]:
                raise RuntimeError(
                    f"Consent event {values['id']} of contact {contact.public_id} does not "
                    "verify; run `flask verify-log` and resolve it before migrating."
                )
            previous = values["hash"]
        if contact.chain_head != previous:
            raise RuntimeError(
                f"The chain head of contact {contact.public_id} is not its last event's hash; "
                "run `flask verify-log` and resolve it before migrating."
            )


def _rechain(bind, fields, add_digest):
    """Rewrite every chain in the canonical form ``fields``."""
    for contact, chain in _chains(bind):
        previous = None
        for values in chain:
            changes = {}
            if add_digest:
                salt = secrets.token_hex(16)
                text = salt + _json(values, PERSONAL)
                changes.update(
                    personal_salt=salt,
                    personal_digest=hashlib.sha256(text.encode("utf-8")).hexdigest(),
                )
            values.update(changes, prev_hash=previous)
            changes.update(prev_hash=previous, hash=_hash(values, fields))
            bind.execute(events.update().where(events.c.id == values["id"]).values(**changes))
            previous = changes["hash"]
        bind.execute(
            contacts.update().where(contacts.c.id == contact.id).values(chain_head=previous)
        )


def _drop_triggers(postgres):
    for verb in ("update", "delete"):
        op.execute(
            f"DROP TRIGGER consent_events_no_{verb}" + (" ON consent_events" if postgres else "")
        )


def _create_triggers(postgres, allow_erasure):
    if postgres:
        erasable = ", ".join(f"'{name}'" for name in ERASABLE)
        nulled = " AND ".join(f"NEW.{name} IS NULL" for name in ERASABLE)
        allowed = (
            f"""
                IF TG_OP = 'UPDATE' THEN
                    IF {nulled}
                       AND to_jsonb(NEW) - ARRAY[{erasable}]::text[]
                           = to_jsonb(OLD) - ARRAY[{erasable}]::text[] THEN
                        RETURN NEW;
                    END IF;
                END IF;"""
            if allow_erasure
            else ""
        )
        op.execute(
            f"""
            CREATE OR REPLACE FUNCTION consent_events_append_only() RETURNS trigger AS $$
            BEGIN
                -- Erasure may set the personal fields and the salt to NULL; nothing else
                -- may change (to_jsonb compares every column, including future ones).{allowed}
                RAISE EXCEPTION '{MESSAGE}';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER consent_events_no_{verb.lower()} BEFORE {verb} "
                "ON consent_events FOR EACH ROW EXECUTE FUNCTION consent_events_append_only()"
            )
        return
    when = ""
    if allow_erasure:
        condition = " AND ".join(
            [f"NEW.{name} IS NULL" for name in ERASABLE]
            + [f"NEW.{name} IS OLD.{name}" for name in KEPT_COLUMNS]
        )
        when = f" WHEN NOT ({condition})"
    op.execute(
        f"CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events{when} "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
    )
    op.execute(
        "CREATE TRIGGER consent_events_no_delete BEFORE DELETE ON consent_events "
        f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
    )


def upgrade():
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    _verify(bind, FIELDS_BEFORE)  # before any change, so a refusal leaves nothing behind
    _drop_triggers(postgres)
    with op.batch_alter_table("consent_events") as batch:
        batch.add_column(sa.Column("personal_salt", sa.String(32), nullable=True))
        batch.add_column(sa.Column("personal_digest", sa.String(64), nullable=True))
    _rechain(bind, FIELDS_AFTER, add_digest=True)
    with op.batch_alter_table("consent_events") as batch:
        batch.alter_column("personal_digest", existing_type=sa.String(64), nullable=False)
    _create_triggers(postgres, allow_erasure=True)


def downgrade():
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    _verify(bind, FIELDS_AFTER)
    _drop_triggers(postgres)
    _rechain(bind, FIELDS_BEFORE, add_digest=False)
    with op.batch_alter_table("consent_events") as batch:
        batch.drop_column("personal_digest")
        batch.drop_column("personal_salt")
    _create_triggers(postgres, allow_erasure=False)
