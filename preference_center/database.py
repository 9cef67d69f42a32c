"""Engine settings that make SQLite behave under concurrent writers."""

from __future__ import annotations

import click
from flask import has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Engine

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, a busy timeout, and BEGIN IMMEDIATE for writers.

    pysqlite would otherwise start a transaction lazily at the first write, so
    two writers could read the same chain head and one would fail. Starting
    write transactions with BEGIN IMMEDIATE makes the second writer wait
    instead. Requests with a safe method (GET/HEAD/OPTIONS) begin deferred
    and never block; so does code outside any request or CLI command (a
    script or a test reading the database beside a live server).
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        if has_request_context():
            read_only = request.method in SAFE_METHODS
        else:
            read_only = click.get_current_context(silent=True) is None
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
