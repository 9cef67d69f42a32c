"""Engine settings that make SQLite behave under concurrent writers, and a session
teardown that survives a database that went away."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask import Flask, has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
log = logging.getLogger(__name__)


def remove_session_safely(app: Flask, db) -> None:
    """End each request's session without letting a dead connection turn into a 500.

    The answer is already built when the session is removed; if the database went
    away in between, the rollback of a read fails. That is no failure of the answer:
    the connection is dropped (the pool replaces it) and the session forgotten.
    Registered after Flask-SQLAlchemy's own teardown, so it runs first.
    """

    @app.teardown_appcontext
    def remove_session(_error: BaseException | None) -> None:
        try:
            db.session.remove()
        except DBAPIError as error:
            log.warning("database connection lost while ending a request: %s", error.orig)
            db.session.registry.clear()


def configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, a busy timeout, and BEGIN IMMEDIATE for writers.

    pysqlite would otherwise start a transaction lazily at the first write, so
    two writers could read the same chain head and one would fail. Starting
    write transactions with BEGIN IMMEDIATE makes the second writer wait
    instead. Requests with a safe method (GET/HEAD/OPTIONS) begin deferred
    and never block; so does code outside any request or CLI command (a
    script or a test reading the database beside a live server), unless its
    connection asks for ``writes`` (``write_connection``, a background job).
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
        options = connection.get_execution_options()
        if options.get("read_only"):
            read_only = True
        elif options.get("writes"):
            read_only = False
        elif has_request_context():
            read_only = request.method in SAFE_METHODS
        else:
            read_only = click.get_current_context(silent=True) is None
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def commit_keeping_objects(session) -> None:
    """Commit without expiring what the session holds, so an answer can be rendered
    from what the transaction wrote after its locks are released, with no second
    transaction to read it back (a write-locked one on SQLite)."""
    expire, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


@contextmanager
def reads_before_writing(session) -> Iterator[None]:
    """On SQLite, the block's reads in a deferred transaction that ends with the block,
    so the write transaction after it (BEGIN IMMEDIATE) holds the database's single
    write lock only for the writes. What the block loaded stays loaded; the verbs of
    ``consent`` re-read under their lock what they decide on. Elsewhere (PostgreSQL
    locks rows, not the database) the block simply joins the request's transaction.
    """
    if session.get_bind().dialect.name != "sqlite" or session.in_transaction():
        yield
        return
    session.connection(execution_options={"read_only": True})
    yield
    commit_keeping_objects(session)


@contextmanager
def read_only_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for long reads (verification, exports) that sees one snapshot.

    PostgreSQL: a read-only REPEATABLE READ transaction, so every statement of
    a verification sees the same moment. SQLite: a deferred BEGIN, which in WAL
    mode is a snapshot too and does not hold the write lock (BEGIN IMMEDIATE
    would stall every writer for the length of an export). Statements are
    planned to return every row, not the first few.
    """
    options: dict = {"read_only": True}
    if engine.dialect.name == "postgresql":
        options.update(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    with engine.connect().execution_options(**options) as connection:
        try:
            if engine.dialect.name == "postgresql":
                # These reads take every row through a server-side cursor, which PostgreSQL
                # otherwise plans for its first 10% (cursor_tuple_fraction 0.1): nested
                # loops that made the audience of 13,298 rows take 45 s instead of 0.3 s.
                connection.exec_driver_sql("SET LOCAL cursor_tuple_fraction = 1.0")
            yield connection
        finally:
            connection.rollback()


# Execution options for a connection that writes outside a request or CLI command
# (a background job): on SQLite its transactions begin IMMEDIATE, as a POST's do.
WRITES = {"writes": True}


@contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """One short write transaction of its own, committed on leaving (rolled back on error)."""
    with engine.connect().execution_options(**WRITES) as connection, connection.begin():
        yield connection
