"""Security headers on every response, and tokens kept out of the logs."""

from __future__ import annotations

import logging
import re

from flask import Flask, abort, current_app, request

from .tokens import InvalidLink

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Paths whose last segment is a bearer token (manage, one-click, confirm links).
TOKEN_PATH = re.compile(
    r"(/(?:p|u|confirm|verify-address|download|erase|yes|keep|leaving)/)[^/\s?\"]+"
)


def embeddable_csp() -> str:
    """The CSP of a page other sites may frame: this site and EMBED_ORIGINS only."""
    ancestors = " ".join(["'self'", *current_app.config["EMBED_ORIGINS"]])
    return CSP.replace("frame-ancestors 'none'", f"frame-ancestors {ancestors}")


def redact(text: str) -> str:
    """Replace every link token in ``text`` with a placeholder."""
    return TOKEN_PATH.sub(r"\1[token]", text)


class RedactTokens(logging.Filter):
    """Keeps signed tokens out of request logs (werkzeug's and ours)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        record.msg = redact(str(record.msg))
        return True


def add_headers(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if "frame-ancestors 'none'" in headers["Content-Security-Policy"]:
        # Only pages that name who may frame them (the signup form) drop this.
        headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if request.scheme == "https":
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if not request.path.startswith("/static/"):
        # Token pages must not be cached, indexed or leak through Referer.
        headers.setdefault("Cache-Control", "no-store")
        headers.setdefault("X-Robots-Tag", "noindex, nofollow")
    return response


def refuse_cross_origin_posts():
    """Refuse state changes whose Origin names another site.

    Our pages send ``Referrer-Policy: no-referrer``, so browsers send no
    Referer and ``Origin: null`` on same-site form posts; Flask-WTF's strict
    Referer check would refuse them all over https, so it is off and this
    check (plus the session-bound CSRF token) takes its place. The RFC 8058
    one-click POST and the bearer-authenticated API come from mail providers
    and servers, not browsers, and are exempt.
    """
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    if request.path.startswith(("/api/", "/u/")):
        return None
    origin = request.headers.get("Origin")
    if origin in (None, "null"):
        return None
    allowed = {current_app.config["PUBLIC_BASE_URL"], request.host_url.rstrip("/")}
    if origin.rstrip("/") not in allowed:
        abort(400, description="This request came from another site and was refused.")
    return None


def _has_nul(values) -> bool:
    return any("\x00" in value for value in values if isinstance(value, str))


def refuse_nul_characters():
    """Refuse a NUL character in the URL, form or headers before anything reads it.

    No field of ours means one; PostgreSQL text refuses it (a DataError deep in
    a transaction) and SQLite would keep it invisibly. A path with a NUL names
    no page (404, the invalid-link page for a token path); anywhere else it is a
    clear 400. The API checks its JSON itself and answers in its own format, so
    only its database errors are left to errors.py.
    """
    if "\x00" in request.path:
        if TOKEN_PATH.match(request.path):
            raise InvalidLink
        abort(404)
    if request.path.startswith("/api/"):
        return None
    parts = [v for key, value in request.args.items(multi=True) for v in (key, value)]
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        parts += [v for key, value in request.form.items(multi=True) for v in (key, value)]
        parts += [upload.filename or "" for upload in request.files.values()]
    parts += [value for _name, value in request.headers.items()]
    if any("\x00" in part for part in parts):
        abort(400, description="The request contained a NUL character, which no field accepts.")
    return None


def init_app(app: Flask) -> None:
    app.config.setdefault("WTF_CSRF_SSL_STRICT", False)
    app.before_request(refuse_nul_characters)
    app.before_request(refuse_cross_origin_posts)
    app.after_request(add_headers)
    for name in ("werkzeug", "gunicorn.access", "gunicorn.error", app.logger.name):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
