"""The consent preference center: create_app builds the Flask application."""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import load_dotenv
from flask import Flask

from . import config, database, errors, languages, security
from .extensions import csrf, db, htmx, limiter, login_manager, mail, migrate

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    """Config → extensions → blueprints → CLI → error handlers."""
    load_dotenv(PROJECT_ROOT / ".env")
    app = Flask(
        __name__,
        instance_path=os.environ.get("INSTANCE_PATH") or str(PROJECT_ROOT / "instance"),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(config.from_environment(app.instance_path))
    app.config.from_pyfile("config.py", silent=True)
    if test_config:
        app.config.from_mapping(test_config)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    csrf.init_app(app)
    mail.init_app(app)
    htmx.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    languages.init_app(app)
    with app.app_context():
        database.configure_sqlite(db.engine)

    # auth registers the Flask-Login user loader when imported.
    from . import admin, api, cli, health, public
    from .admin import auth  # noqa: F401

    public.register_blueprints(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(cli.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(admin.bp)
    security.init_app(app)
    errors.init_app(app)
    return app
