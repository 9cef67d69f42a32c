"""The app (each request in its own app context, as in production), client and runner."""

from __future__ import annotations

import contextvars

import pytest
from flask.testing import FlaskClient

from preference_center import create_app
from preference_center.admin import import_jobs
from preference_center.extensions import db

from .database import clean_database, settings


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


def pushed(app):
    """The app with its context pushed for the test, and its connections closed after."""
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        import_jobs.wait_for_runners()
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(database_url, tmp_path, monkeypatch, smtp_server):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    sink, _ = smtp_server
    app = create_app(settings(database_url, tmp_path, MAIL_PORT=sink.port))
    yield from pushed(app)


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
        app = create_app(settings(url, directory, MAIL_PORT=sink.port))
    yield from pushed(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()
