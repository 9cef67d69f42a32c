"""One friendly page (or JSON error under /api) for every failure; never a trace."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DataError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from .extensions import db
from .tokens import InvalidLink, LinkExpired


def title_for(status: int) -> str:
    """The heading of an error page, in the response's language."""
    titles = {
        400: _("That request didn't make sense"),
        403: _("Not allowed"),
        404: _("Not found"),
        405: _("That isn't how this page works"),
        409: _("That didn't work"),
        413: _("That was too much to send"),
        429: _("Too many requests"),
        503: _("We are briefly unavailable"),
    }
    return titles.get(status, _("Something went wrong"))


def default_text(status: int) -> str:
    """Our words for an HTTP error that came without its own (Werkzeug's are English)."""
    texts = {
        400: _("The request could not be understood. Please go back and try again."),
        404: _("There is nothing at this address. Please check the link."),
        405: _("This page does not accept that kind of request."),
        413: _("That was more than this page accepts. Please send less."),
    }
    return texts.get(status, _("Something went wrong on our side."))


def wants_json() -> bool:
    return request.path.startswith("/api/")


def error_page(status: int, text: str, code: str | None = None):
    if wants_json():
        body = {"error": {"code": code or str(status), "message": text}}
        return jsonify(body), status
    try:
        title = title_for(status)
    except Exception:  # noqa: BLE001 - a broken catalog must not break the error page
        title = "Something went wrong"
    try:
        return render_template("public/message.html", title=title, text=text), status
    except Exception:  # noqa: BLE001 - the error page itself must never fail
        return f"{title}. {text}", status, {"Content-Type": "text/plain; charset=utf-8"}


def init_app(app: Flask) -> None:
    @app.errorhandler(InvalidLink)
    def invalid_link(_error):
        # Tampered, expired, revoked or unknown: one answer, no hint which.
        text = _(
            "This link isn't valid. It may be old or incomplete. "
            "You can ask for a fresh link to be emailed to you."
        )
        return error_page(404, text, "invalid_link")

    @app.errorhandler(LinkExpired)
    def link_expired(_error):
        # The link is genuine but old: saying no still works, the rest needs a fresh link.
        db.session.rollback()
        text = _("This link has expired for that. Saying no still works from it.")
        if wants_json():
            return error_page(403, text, "link_expired")
        return render_template(
            "public/link_expired.html", title=_("This link has expired"), text=text
        ), 403

    @app.errorhandler(CSRFError)
    def csrf_error(_error):
        db.session.rollback()
        text = _("This form has expired. Please reload the page and try again.")
        return error_page(400, text, "csrf")

    @app.errorhandler(OperationalError)
    def database_unavailable(_error):
        db.session.rollback()
        app.logger.warning("database unavailable during %s", request.path)
        return error_page(503, _("Please try again in a moment."), "unavailable")

    @app.errorhandler(DataError)
    def value_not_storable(_error):
        # The database refused a value (a NUL, a string longer than its column):
        # the request's fault, and its transaction is rolled back whole.
        db.session.rollback()
        app.logger.warning("database refused a value during %s", request.path)
        text = _("A value in that request could not be stored. Please check it and try again.")
        return error_page(400, text, "invalid_value")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        db.session.rollback()
        if error.code == 429:
            # The same words whichever limit was hit: no hint about the address.
            text = _("Too many requests. Please wait a while and try again.")
        elif error.code == 500:
            text = _("Something went wrong on our side.")
        elif error.description == type(error).description and not wants_json():
            text = default_text(error.code or 500)
        else:
            text = error.description
        return error_page(error.code or 500, text, error.name.lower().replace(" ", "_"))

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        db.session.rollback()
        app.logger.exception("unhandled error on %s", request.path)
        text = (
            InternalServerError.description
            if wants_json()
            else _("Something went wrong on our side.")
        )
        return error_page(500, text, "internal")
