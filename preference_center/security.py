"""Security headers on every response, and tokens kept out of the logs."""

from __future__ import annotations

import logging
import re

from flask import Flask, request

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Paths whose last segment is a bearer token (manage, one-click, confirm links).
TOKEN_PATH = re.compile(r"(/(?:p|u|confirm|verify-address|download|erase)/)[^/\s?\"]+")


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
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if request.scheme == "https":
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if not request.path.startswith("/static/"):
        # Token pages must not be cached, indexed or leak through Referer.
        headers.setdefault("Cache-Control", "no-store")
        headers.setdefault("X-Robots-Tag", "noindex, nofollow")
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_headers)
    for name in ("werkzeug", "gunicorn.access", "gunicorn.error", app.logger.name):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
