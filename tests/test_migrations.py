"""Migration 0004: existing events get a personal digest and are re-chained, never laundered."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from datetime import datetime

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade
from plugins.database import settings as _settings

from preference_center import create_app, ledger
from preference_center.extensions import db

# The canonical form before 0004, written out here so the test does not trust the code under test.
FIELDS_BEFORE = [
    "contact", "list", "request_id", "action", "from_state", "to_state", "basis", "source",
    "channel", "actor", "occurred_at", "ip", "user_agent", "notice_version", "evidence",
    "detail", "prev_hash",
]  # fmt: skip


def old_hash(fields: dict) -> str:
    text = json.dumps(
        {k: fields.get(k) for k in FIELDS_BEFORE},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(((fields["prev_hash"] or "") + text).encode("utf-8")).hexdigest()


@pytest.fixture
def empty_url(database, tmp_path):
    """A database of its own, with no tables yet."""
    kind, _ = database
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'legacy.sqlite3'}"
        return
    admin_url = sa.make_url(os.environ["TEST_DATABASE_URL"])
    name = f"pc_mig_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield admin_url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def legacy(empty_url, tmp_path, monkeypatch):
    """An app whose database is at 0003, holding a chain hashed the old way."""
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(_settings(empty_url, tmp_path))
    with app.app_context():
        upgrade(revision="0003")
        yield app
        db.session.remove()
        db.engine.dispose()


def write_old_chain(break_it: bool = False) -> list[dict]:
    """One contact, one list, three events with personal fields, chained as before 0004."""
    execute = db.session.execute
    execute(
        sa.text(
            "INSERT INTO lists (id, slug, name, description, frequency, audience,"
            " notice_version, created_at) VALUES (1, 'notes', 'Notes', '', '', 'personal', 1,"
            " CURRENT_TIMESTAMP)"
        )
    )
    execute(
        sa.text(
            "INSERT INTO contacts (id, public_id, token_version, business_contact,"
            " business_mail_to_business_address, receipts_enabled, created_at)"
            " VALUES (1, :p, 1, 'allowed', false, true, CURRENT_TIMESTAMP)"
        ),
        {"p": "a" * 32},
    )
    previous, rows = None, []
    for number, (action, to_state, ip, detail) in enumerate(
        [
            ("subscribe", "subscribed", None, None),
            ("withdraw", "unsubscribed", "198.51.100.7", "Café, naïve ✓"),
            ("opt_in", "subscribed", "2001:db8::1", None),
        ],
        start=1,
    ):
        moment = datetime(2026, 1, number, 9, 30, 15, 123456)
        fields = {
            "contact": "a" * 32,
            "list": "notes",
            "request_id": f"r{number}",
            "action": action,
            "from_state": None,
            "to_state": to_state,
            "basis": "personal",
            "source": "signup form",
            "channel": "preference_page",
            "actor": "contact",
            "occurred_at": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "ip": ip,
            "user_agent": "UA/1" if ip else None,
            "notice_version": 1,
            "evidence": "ticked the box",
            "detail": detail,
            "prev_hash": previous,
        }
        stored_hash = old_hash(fields)
        if break_it and number == 2:
            fields["evidence"] = "changed after the fact"
        execute(
            sa.text(
                "INSERT INTO consent_events (id, contact_id, list_id, request_id, action,"
                " from_state, to_state, basis, source, channel, actor, occurred_at, ip,"
                " user_agent, notice_version, evidence, detail, prev_hash, hash) VALUES"
                " (:id, 1, 1, :request_id, :action, :from_state, :to_state, :basis, :source,"
                " :channel, :actor, :moment, :ip, :user_agent, :notice_version, :evidence,"
                " :detail, :prev_hash, :hash)"
            ),
            {**fields, "id": number, "moment": moment, "hash": stored_hash},
        )
        previous = stored_hash
        rows.append(fields)
    execute(sa.text("INSERT INTO subscriptions (contact_id, list_id, state, source, added_by,"
                    " added_at, basis, evidence, deliver_to_business, updated_at) VALUES (1, 1,"
                    " 'subscribed', 'signup form', 'Dana', CURRENT_TIMESTAMP, 'personal', '',"
                    " false, CURRENT_TIMESTAMP)"))  # fmt: skip
    execute(sa.text("UPDATE contacts SET chain_head = :h WHERE id = 1"), {"h": previous})
    db.session.commit()
    return rows


def stored_events() -> list[sa.Row]:
    db.session.commit()
    return list(db.session.execute(sa.text("SELECT * FROM consent_events ORDER BY id")))


def test_upgrade_gives_old_events_a_digest_and_a_chain_that_verifies(legacy):
    before = write_old_chain()

    upgrade()

    report = ledger.verify_all()
    assert report.ok, report.problems
    assert report.events_checked == 3
    after = stored_events()
    assert [(e.ip, e.detail) for e in after] == [(f["ip"], f["detail"]) for f in before]
    assert all(len(e.personal_salt) == 32 and len(e.personal_digest) == 64 for e in after)
    assert after[0].prev_hash is None
    assert [e.prev_hash for e in after[1:]] == [e.hash for e in after[:-1]]
    assert db.session.execute(sa.text("SELECT chain_head FROM contacts")).scalar() == after[-1].hash


def test_after_the_upgrade_only_minimisation_may_update_and_nothing_may_delete(legacy):
    write_old_chain()
    upgrade()
    event_id = stored_events()[1].id

    for statement in (
        "UPDATE consent_events SET evidence = 'rewritten' WHERE id = :id",
        # Hashed when set (0007, 0009): the trigger keeps both as they were written.
        "UPDATE consent_events SET jurisdiction = 'CA' WHERE id = :id",
        "UPDATE consent_events SET language = 'fr' WHERE id = :id",
        "DELETE FROM consent_events WHERE id = :id",
    ):
        with pytest.raises(sa.exc.DBAPIError, match="consent_events is append-only"):
            db.session.execute(sa.text(statement), {"id": event_id})
        db.session.rollback()
    db.session.execute(
        sa.text(
            "UPDATE consent_events SET ip = NULL, user_agent = NULL, evidence = NULL,"
            " detail = NULL, personal_salt = NULL WHERE id = :id"
        ),
        {"id": event_id},
    )
    db.session.commit()

    assert ledger.verify_all().ok


def test_a_log_that_does_not_verify_is_refused_and_left_as_it_was(legacy, capfd):
    write_old_chain(break_it=True)

    with pytest.raises(SystemExit):  # flask_migrate logs the RuntimeError and exits 1
        upgrade()
    db.session.rollback()

    assert f"Consent event 2 of contact {'a' * 32} does not verify" in capfd.readouterr().err

    columns = {c["name"] for c in sa.inspect(db.engine).get_columns("consent_events")}
    assert "personal_digest" not in columns
    version = db.session.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    assert version == "0003"


def test_downgrade_restores_the_old_canonical_form(legacy):
    before = write_old_chain()
    upgrade()

    downgrade(revision="0003")

    after = stored_events()
    assert [e.hash for e in after] == [old_hash(f) for f in before]
    with pytest.raises(sa.exc.DBAPIError, match="consent_events is append-only"):
        db.session.execute(sa.text("UPDATE consent_events SET ip = NULL WHERE id = 1"))
    db.session.rollback()
