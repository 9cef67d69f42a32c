"""The database refuses UPDATE and DELETE on consent events.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

MESSAGE = "consent_events is append-only"


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION consent_events_append_only() RETURNS trigger AS $$
            BEGIN
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
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER consent_events_no_{verb.lower()} BEFORE {verb} "
                f"ON consent_events BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
            )


def downgrade():
    for verb in ("update", "delete"):
        op.execute(f"DROP TRIGGER consent_events_no_{verb} ON consent_events"
                   if op.get_bind().dialect.name == "postgresql"
                   else f"DROP TRIGGER consent_events_no_{verb}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION consent_events_append_only()")
