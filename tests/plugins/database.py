"""A migrated database for the session (SQLite file or PostgreSQL), clean for each test.

Set TEST_DATABASE_URL=postgresql+psycopg://user@host:port/db to run the whole
suite on PostgreSQL: a fresh database is created next to the one named, and
dropped at the end.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from preference_center import create_app
from preference_center.extensions import db

TEST_SECRET = "test-secret-key-" + "x" * 32


def _compile_catalogs() -> None:
    """Build any missing or stale .mo, as `make translations` does, so a bare pytest run
    serves every language too."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parents[2] / "preference_center" / "translations"
    for po in root.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with po.open("rb") as source:
                catalog = read_po(source, locale=po.parent.parent.name)
            with mo.open("wb") as target:
                write_mo(target, catalog)


_compile_catalogs()


def settings(url: str, instance: Path, **extra) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": TEST_SECRET,
        "LINK_SIGNING_KEYS": [TEST_SECRET],
        "SQLALCHEMY_DATABASE_URI": url,
        "PUBLIC_BASE_URL": "https://prefs.example.test",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": 1,
        "MAIL_SUPPRESS_SEND": False,
        "RATELIMIT_STORAGE_URI": "memory://",
        **extra,
    }


def _migrate(url: str, instance: Path) -> None:
    from flask_migrate import upgrade

    app = create_app(settings(url, instance))
    with app.app_context():
        upgrade()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="session")
def database(tmp_path_factory):
    """A migrated database for the session: (kind, url or template path)."""
    instance = tmp_path_factory.mktemp("instance")
    requested = os.environ.get("TEST_DATABASE_URL", "")
    if requested.startswith("postgresql"):
        admin_url = sa.make_url(requested)
        name = f"pc_test_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = admin_url.set(database=name).render_as_string(hide_password=False)
        _migrate(url, instance)
        yield "postgresql", url
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    else:
        template = instance / "template.sqlite3"
        _migrate(f"sqlite:///{template}", instance)
        yield "sqlite", template


def clean_database(database, directory: Path) -> str:
    """The URL of a clean database: a copy of the SQLite template, or PostgreSQL emptied."""
    kind, where = database
    if kind == "sqlite":
        path = directory / "test.sqlite3"
        shutil.copy(where, path)
        return f"sqlite:///{path}"
    engine = sa.create_engine(where)
    tables = [t for t in sa.inspect(engine).get_table_names() if t != "alembic_version"]
    with engine.begin() as connection:
        # TRUNCATE does not fire the row triggers that keep the log append-only.
        connection.exec_driver_sql(
            "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"
        )
    engine.dispose()
    return where


@pytest.fixture
def database_url(database, tmp_path):
    """A clean database for one test."""
    return clean_database(database, tmp_path)
