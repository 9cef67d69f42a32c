"""Plain-Python floors for the CLI figures: the least work that gives the same output.

Each floor runs in this process (no start-up to pay) on the same machine and
database kind, in the same run as the figure it is the floor of.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
import time
import uuid
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

FLOOR_TABLES = (
    "CREATE TABLE floor_contacts (id {pk}, public_id VARCHAR(32) UNIQUE, name VARCHAR(200),"
    " chain_head VARCHAR(64))",
    "CREATE TABLE floor_addresses (id {pk}, contact_id INTEGER REFERENCES floor_contacts(id),"
    " email VARCHAR(320) UNIQUE, kind VARCHAR(16))",
    "CREATE TABLE floor_subscriptions (id {pk}, contact_id INTEGER REFERENCES"
    " floor_contacts(id), list_id INTEGER, state VARCHAR(16), source VARCHAR(200),"
    " basis VARCHAR(32), evidence TEXT)",
    "CREATE TABLE floor_events (id {pk}, contact_id INTEGER REFERENCES floor_contacts(id),"
    " action VARCHAR(32), to_state VARCHAR(16), basis VARCHAR(32), occurred_at VARCHAR(32),"
    " prev_hash VARCHAR(64), hash VARCHAR(64) UNIQUE)",
)


def import_floor(url: str, csv_path: Path, work: Path) -> float:
    """Seconds to read ``csv_path`` and write, per row, a contact, an address, a
    subscription and one SHA-256-chained event with the DB-API (one transaction)."""
    if url.startswith("postgresql"):
        import psycopg

        libpq = sa.make_url(url).set(drivername="postgresql").render_as_string(False)
        connection = psycopg.connect(libpq)
        pk, returning = "SERIAL PRIMARY KEY", " RETURNING id"
        mark = "%s"
    else:
        path = work / "floor.sqlite3"
        path.unlink(missing_ok=True)
        connection = sqlite3.connect(path)
        connection.execute("PRAGMA journal_mode=WAL")
        pk, returning, mark = "INTEGER PRIMARY KEY", "", "?"
    try:
        cursor = connection.cursor()
        for statement in FLOOR_TABLES:
            cursor.execute(statement.format(pk=pk))
        connection.commit()
        started = time.perf_counter()
        _write_rows(cursor, csv_path, mark, returning)
        connection.commit()
        return time.perf_counter() - started
    finally:
        if url.startswith("postgresql"):
            cursor = connection.cursor()
            for table in ("floor_events", "floor_subscriptions", "floor_addresses"):
                cursor.execute(f"DROP TABLE {table}")
            cursor.execute("DROP TABLE floor_contacts")
            connection.commit()
        connection.close()


def _write_rows(cursor, csv_path: Path, mark: str, returning: str) -> None:
    values = ", ".join([mark] * 3)
    insert_contact = (
        f"INSERT INTO floor_contacts (public_id, name, chain_head) VALUES ({values}){returning}"
    )
    insert_address = (
        f"INSERT INTO floor_addresses (contact_id, email, kind) VALUES ({', '.join([mark] * 3)})"
    )
    insert_subscription = (
        "INSERT INTO floor_subscriptions (contact_id, list_id, state, source, basis, evidence) "
        f"VALUES ({', '.join([mark] * 6)})"
    )
    insert_event = (
        "INSERT INTO floor_events (contact_id, action, to_state, basis, occurred_at, "
        f"prev_hash, hash) VALUES ({', '.join([mark] * 7)})"
    )
    with csv_path.open(newline="", encoding="utf-8") as stream:
        reader = csv.reader(stream)
        next(reader)
        for email, name, evidence in reader:
            email = email.strip().lower()
            public_id = uuid.uuid4().hex
            occurred_at = datetime.now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            canonical = json.dumps(
                {
                    "contact": public_id,
                    "action": "subscribe",
                    "to_state": "subscribed",
                    "basis": "express",
                    "evidence": evidence,
                    "occurred_at": occurred_at,
                    "prev_hash": None,
                },
                sort_keys=True,
                separators=(",", ":"),
                ensure_ascii=False,
            )
            event_hash = hashlib.sha256(canonical.encode()).hexdigest()
            cursor.execute(insert_contact, (public_id, name, event_hash))
            contact_id = cursor.fetchone()[0] if returning else cursor.lastrowid
            cursor.execute(insert_address, (contact_id, email, "personal"))
            cursor.execute(
                insert_subscription,
                (contact_id, 1, "subscribed", "bench sheet", "express", evidence),
            )
            cursor.execute(
                insert_event,
                (contact_id, "subscribe", "subscribed", "express", occurred_at, None, event_hash),
            )


def audience_floor(url: str, list_slug: str, key: str, base_url: str, out: Path) -> float:
    """Seconds to read a list's subscribed contacts with the DB-API and write, per row,
    the address and its two signed links (manage, one-click unsubscribe) made with bare
    itsdangerous, as CSV."""
    from itsdangerous import URLSafeTimedSerializer

    from preference_center.tokens import MANAGE, UNSUBSCRIBE

    manage = URLSafeTimedSerializer([key], salt=MANAGE)
    unsubscribe = URLSafeTimedSerializer([key], salt=UNSUBSCRIBE)
    query = (
        "SELECT c.public_id, c.token_version, a.email FROM subscriptions s "
        "JOIN contacts c ON c.id = s.contact_id "
        "JOIN addresses a ON a.contact_id = c.id AND a.kind = 'personal' "
        "JOIN lists l ON l.id = s.list_id "
        "WHERE l.slug = {mark} AND s.state = 'subscribed' ORDER BY c.id"
    )
    started = time.perf_counter()
    if url.startswith("postgresql"):
        import psycopg

        libpq = sa.make_url(url).set(drivername="postgresql").render_as_string(False)
        connection = psycopg.connect(libpq)
        cursor = connection.cursor(name="floor")  # server-side, as the audience streams
        cursor.itersize = 1000
        cursor.execute(query.format(mark="%s"), (list_slug,))
    else:
        connection = sqlite3.connect(sa.make_url(url).database)
        cursor = connection.execute(query.format(mark="?"), (list_slug,))
    try:
        with out.open("w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(("email", "contact", "manage_url", "unsubscribe_url"))
            for public_id, version, email in cursor:
                writer.writerow(
                    (
                        email,
                        public_id,
                        f"{base_url}/p/{manage.dumps({'c': public_id, 'v': version})}",
                        f"{base_url}/u/"
                        + unsubscribe.dumps({"c": public_id, "v": version, "l": list_slug}),
                    )
                )
    finally:
        connection.close()
    return time.perf_counter() - started
