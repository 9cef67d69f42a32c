"""Blueprint: ESP webhooks at /feedback/<provider>, authenticated as each documents.

Every answer is JSON. A provider that is not configured is a 404 and writes
nothing; wrong credentials or signature 401/403; a signed timestamp outside
``FEEDBACK_MAX_AGE_SECONDS`` (5 minutes by default; a replay) 403; a body
that is not what the provider sends 400, too large 413. A request that is
accepted answers ``{"received": N}`` (the number of events that matter here),
the same whether or not any address is known.
"""

from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from .. import esp_feedback
from ..esp_feedback import Malformed, Signal
from ..extensions import csrf, db
from . import mailgun, postmark, sendgrid

bp = Blueprint("feedback", __name__, url_prefix="/feedback")
# Providers post from their servers with a credential of their own: no session, no CSRF token.
csrf.exempt(bp)


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str):
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    if status == 401 and request.endpoint == "feedback.postmark_events":
        response.headers["WWW-Authenticate"] = 'Basic realm="feedback"'
    return response


@bp.errorhandler(Refused)
def refused(error: Refused):
    db.session.rollback()
    return _error(error.status, error.code, error.message)


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException):
    # An oversized body (413) or a wrong method: JSON too, never the HTML page.
    db.session.rollback()
    return _error(error.code or 400, error.name.lower().replace(" ", "_"), error.description)


@bp.before_request
def limit_body():
    request.max_content_length = current_app.config["FEEDBACK_MAX_CONTENT_LENGTH"]


def setting(name: str) -> str:
    value = (current_app.config.get(name) or "").strip()
    if not value:
        raise Refused(404, "not_found", "The requested URL was not found on the server.")
    return value


def fresh(timestamp: str) -> None:
    """Refuse a signed timestamp outside the replay window (either way: clocks drift)."""
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        raise Refused(403, "bad_signature", "The signature timestamp is not a number.") from None
    if age > current_app.config["FEEDBACK_MAX_AGE_SECONDS"]:
        raise Refused(403, "stale", "The signature timestamp is too old (or in the future).")


def accept(signals: list[Signal]):
    esp_feedback.apply_all(signals)
    db.session.commit()
    return {"received": len(signals)}


def body() -> bytes:
    return request.get_data(cache=True)


@bp.post("/sendgrid")
def sendgrid_events():
    """SendGrid's signed Event Webhook (an array of events)."""
    configured = setting("SENDGRID_WEBHOOK_PUBLIC_KEY")
    try:
        key = sendgrid.public_key(configured)
    except ValueError:
        current_app.logger.warning("SENDGRID_WEBHOOK_PUBLIC_KEY is not a P-256 DER key")
        raise Refused(404, "not_found", "The requested URL was not found on the server.") from None
    signature = request.headers.get(sendgrid.SIGNATURE_HEADER)
    timestamp = request.headers.get(sendgrid.TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise Refused(401, "unsigned", "The request carries no Event Webhook signature.")
    fresh(timestamp)
    raw = body()
    if not sendgrid.verify(key, signature, timestamp, raw):
        raise Refused(403, "bad_signature", "The Event Webhook signature does not verify.")
    try:
        return accept(sendgrid.signals(raw))
    except Malformed as error:
        raise Refused(400, "malformed", str(error)) from None


@bp.post("/mailgun")
def mailgun_events():
    """A Mailgun webhook (signature and event-data in the JSON body)."""
    signing_key = setting("MAILGUN_WEBHOOK_SIGNING_KEY")
    try:
        payload = mailgun.parse(body())
    except Malformed as error:
        raise Refused(400, "malformed", str(error)) from None
    parts = mailgun.signature_of(payload)
    if parts is None:
        raise Refused(401, "unsigned", "The body carries no Mailgun signature.")
    timestamp, token, signature = parts
    fresh(timestamp)
    if not mailgun.verify(signing_key, timestamp, token, signature):
        raise Refused(403, "bad_signature", "The Mailgun signature does not verify.")
    try:
        return accept(mailgun.signals(payload))
    except Malformed as error:
        raise Refused(400, "malformed", str(error)) from None


@bp.post("/postmark")
def postmark_events():
    """A Postmark bounce, spam complaint or subscription change webhook (basic auth)."""
    user = setting("POSTMARK_WEBHOOK_USER")
    password = setting("POSTMARK_WEBHOOK_PASSWORD")
    given = request.authorization
    if (
        given is None
        or given.type != "basic"
        or not postmark.credentials_match(
            user, password, given.username or "", given.password or ""
        )
    ):
        raise Refused(401, "unauthorized", "Wrong or missing webhook credentials.")
    try:
        return accept(postmark.signals(body()))
    except Malformed as error:
        raise Refused(400, "malformed", str(error)) from None
