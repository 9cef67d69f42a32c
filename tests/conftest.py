"""Fixtures: a migrated database (SQLite file or PostgreSQL), app, client,
runner, a real SMTP server, a live server and Debian's Chromium.

Set TEST_DATABASE_URL=postgresql+psycopg://user@host:port/db to run the whole
suite on PostgreSQL: a fresh database is created next to the one named, and
dropped at the end.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import shutil
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from preference_center import create_app, tokens
from preference_center.consent import Provenance, Via, place
from preference_center.demo import ensure_list
from preference_center.extensions import db
from preference_center.models import Address, Contact, normalise_email

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TEST_SECRET = "test-secret-key-" + "x" * 32


# --- the database -----------------------------------------------------------


def _compile_catalogs() -> None:
    """Build any missing or stale .mo, as `make translations` does, so a bare pytest run
    serves every language too."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parent.parent / "preference_center" / "translations"
    for po in root.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with po.open("rb") as source:
                catalog = read_po(source, locale=po.parent.parent.name)
            with mo.open("wb") as target:
                write_mo(target, catalog)


_compile_catalogs()


def _migrate(url: str, instance: Path) -> None:
    from flask_migrate import upgrade

    app = create_app(_settings(url, instance))
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


# --- mail -------------------------------------------------------------------


@dataclass
class Received:
    raw: bytes
    rcpt_tos: list[str]

    @property
    def message(self):
        return message_from_bytes(self.raw, policy=policy.default)

    def text(self) -> str:
        return self.message.get_body(preferencelist=("plain",)).get_content()

    def html(self) -> str:
        return self.message.get_body(preferencelist=("html",)).get_content()


@dataclass
class SmtpSink:
    port: int
    messages: list[Received] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # A mailbox named "refused…" is one the server turns down for good.
        if address.startswith("refused"):
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(Received(envelope.original_content, list(envelope.rcpt_tos)))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RestartableController(Controller):
    """aiosmtpd closes its event loop on stop(); a fresh one lets start() work again,
    so a test can take the server down and bring it back on the same port."""

    def start(self) -> None:
        if self.loop.is_closed():
            self.loop = asyncio.new_event_loop()
        super().start()


@pytest.fixture(scope="session")
def smtp_server():
    """A real SMTP server (aiosmtpd) on loopback, for the whole session."""
    sink = SmtpSink(port=free_port())
    controller = RestartableController(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    yield sink, controller
    controller.stop()


@pytest.fixture
def smtp(smtp_server):
    sink, _controller = smtp_server
    sink.messages.clear()
    return sink


# --- the app ----------------------------------------------------------------


def _settings(url: str, instance: Path, **extra) -> dict:
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


class IsolatedClient(FlaskClient):
    """Each request runs in its own app context, as it does in production.

    Flask reuses an app context that is already pushed (the `app` fixture
    pushes one for the test's own database work); then `g` and the database
    session would leak from one request to the next and into the test.

    The test's own session ends its transaction before and after each
    request, so the request sees what the test committed and the test then
    reads what the request wrote (an open SQLite snapshot would hide it).
    """

    def open(self, *args, **kwargs):
        # Read a streamed body inside the request's context, where it was made.
        kwargs.setdefault("buffered", True)
        db.session.commit()
        try:
            return contextvars.Context().run(super().open, *args, **kwargs)
        finally:
            db.session.commit()


@pytest.fixture
def app(database_url, tmp_path, monkeypatch, smtp_server):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    sink, _ = smtp_server
    app = create_app(_settings(database_url, tmp_path, MAIL_PORT=sink.port))
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="module")
def module_app(database, tmp_path_factory, smtp_server):
    """One app and database for a whole module, with its app context pushed.

    Hypothesis runs many examples in one test and refuses function-scoped
    fixtures, so its tests share this app; each example makes its own rows.
    Do not mix it with ``app`` in one module: both would use the one database.
    """
    directory = tmp_path_factory.mktemp("module")
    sink, _ = smtp_server
    url = clean_database(database, directory)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INSTANCE_PATH", str(directory / "instance"))
        app = create_app(_settings(url, directory, MAIL_PORT=sink.port))
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# --- a live server and the browser ------------------------------------------


@dataclass
class LiveServer:
    url: str


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.config["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LiveServer(app.config["PUBLIC_BASE_URL"])
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


# --- factories --------------------------------------------------------------


class Factory:
    """Builds lists, contacts and subscriptions through the real domain code."""

    def list(self, slug: str, audience: str = "business", **fields):
        fields.setdefault("name", slug.replace("-", " ").title())
        fields.setdefault("description", f"What {slug} sends.")
        fields.setdefault("frequency", "Monthly")
        mailing_list = ensure_list(slug=slug, audience=audience, **fields)
        db.session.commit()
        return mailing_list

    def contact(self, email: str, name: str | None = None) -> Contact:
        contact = Contact(name=name)
        contact.addresses.append(Address(email=normalise_email(email), kind="personal"))
        db.session.add(contact)
        db.session.commit()
        return contact

    def subscription(
        self,
        contact,
        mailing_list,
        state: str = "subscribed",
        basis: str = "express",
        source: str = "signup form",
        added_by: str = "Dana Reyes",
        evidence: str = "ticked the box",
        basis_date: date | None = None,
        added_at: datetime | None = None,
    ):
        provenance = Provenance(
            source=source,
            added_by=added_by,
            basis=basis,
            evidence=evidence,
            basis_date=basis_date,
            added_at=added_at,
        )
        subscription, _ = place(contact, mailing_list, state, provenance, Via("admin", "test"))
        db.session.commit()
        return subscription


@pytest.fixture
def make(app):
    return Factory()


@pytest.fixture
def manage_path(app):
    """The path of a contact's manage link (the host is PUBLIC_BASE_URL's)."""

    def path(contact) -> str:
        return "/p/" + tokens.sign(tokens.MANAGE, contact)

    return path


@pytest.fixture
def api_auth(app):
    """Creates an API key with the given scopes (all by default); returns its auth header."""
    from preference_center.api import keys as api_keys

    def make(*scopes: str, name: str = "sender") -> dict[str, str]:
        _row, key = api_keys.create(name, list(scopes or api_keys.SCOPES))
        db.session.commit()
        return {"Authorization": f"Bearer {key}"}

    return make
