"""The consent preference center: create_app builds the Flask application."""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import load_dotenv
from flask import Flask

from . import config, database, errors, inputs, jurisdictions, languages, rate_limits, security
from .extensions import csrf, db, htmx, login_manager, mail, migrate

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    """Config → extensions → blueprints → CLI → error handlers."""
    load_dotenv(PROJECT_ROOT / ".env")
    app = Flask(
        __name__,
        instance_path=os.environ.get("INSTANCE_PATH") or str(PROJECT_ROOT / "instance"),
        # instance/config.py is read from the instance folder, not the package.
        instance_relative_config=True,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(config.from_environment(app.instance_path))
    app.config.from_pyfile("config.py", silent=True)
    if test_config:
        app.config.from_mapping(test_config)
    if app.config.get("DEFAULT_JURISDICTION"):
        # Refused at start-up: a typo would silently change which rules apply.
        app.config["DEFAULT_JURISDICTION"] = jurisdictions.parse(app.config["DEFAULT_JURISDICTION"])
    inputs.init_app(app)

    db.init_app(app)
    database.remove_session_safely(app, db)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    csrf.init_app(app)
    mail.init_app(app)
    htmx.init_app(app)
    rate_limits.init_app(app)
    login_manager.init_app(app)
    languages.init_app(app)
    with app.app_context():
        database.configure_sqlite(db.engine)

    from . import admin, api, cli, feedback, health, public

    public.register_blueprints(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(cli.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(feedback.bp)
    # With its views, and admin.auth's Flask-Login user loader.
    admin.register_blueprint(app)
    security.init_app(app)
    errors.init_app(app)
    return app
