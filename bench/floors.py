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
    subscription and one SHA-256-chained event with the DB-API (one transaction,
    ``executemany`` per chunk of rows)."""
    if url.startswith("postgresql"):
        import psycopg

        libpq = sa.make_url(url).set(drivername="postgresql").render_as_string(False)
        connection = psycopg.connect(libpq)
        pk, mark = "INTEGER PRIMARY KEY", "%s"
    else:
        path = work / "floor.sqlite3"
        path.unlink(missing_ok=True)
        connection = sqlite3.connect(path)
        connection.execute("PRAGMA journal_mode=WAL")
        pk, mark = "INTEGER PRIMARY KEY", "?"
    try:
        cursor = connection.cursor()
        for statement in FLOOR_TABLES:
            cursor.execute(statement.format(pk=pk))
        connection.commit()
        started = time.perf_counter()
        _write_rows(cursor, csv_path, mark)
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


# Rows per executemany: the floor pays one round trip per statement and chunk, not per row.
FLOOR_CHUNK = 1000


def _write_rows(cursor, csv_path: Path, mark: str) -> None:
    """Ids are counted here (the floor's tables are its own), so each chunk of rows is four
    executemany calls."""
    four = ", ".join([mark] * 4)
    contact_sql = f"INSERT INTO floor_contacts (id, public_id, name, chain_head) VALUES ({four})"
    address_sql = f"INSERT INTO floor_addresses (id, contact_id, email, kind) VALUES ({four})"
    subscription_sql = (
        "INSERT INTO floor_subscriptions (id, contact_id, list_id, state, source, basis, evidence) "
        f"VALUES ({', '.join([mark] * 7)})"
    )
    event_sql = (
        "INSERT INTO floor_events (id, contact_id, action, to_state, basis, occurred_at, "
        f"prev_hash, hash) VALUES ({', '.join([mark] * 8)})"
    )
    chunk: tuple[list, list, list, list] = ([], [], [], [])
    with csv_path.open(newline="", encoding="utf-8") as stream:
        reader = csv.reader(stream)
        next(reader)
        for number, (email, name, evidence) in enumerate(reader, 1):
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
            contacts, addresses, subscriptions, events = chunk
            contacts.append((number, public_id, name, event_hash))
            addresses.append((number, number, email, "personal"))
            subscriptions.append(
                (number, number, 1, "subscribed", "bench sheet", "express", evidence)
            )
            events.append(
                (
                    number,
                    number,
                    "subscribe",
                    "subscribed",
                    "express",
                    occurred_at,
                    None,
                    event_hash,
                )
            )
            if len(contacts) == FLOOR_CHUNK:
                _flush(cursor, chunk, (contact_sql, address_sql, subscription_sql, event_sql))
                chunk = ([], [], [], [])
    _flush(cursor, chunk, (contact_sql, address_sql, subscription_sql, event_sql))


def _flush(cursor, chunk: tuple, statements: tuple) -> None:
    for rows, statement in zip(chunk, statements, strict=True):
        if rows:
            cursor.executemany(statement, rows)


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
