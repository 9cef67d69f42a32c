"""Security headers on every response, and tokens kept out of the logs."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from flask import Flask, abort, current_app, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import Map

from .tokens import InvalidLink

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# A variable named ``token`` in a rule, with or without a converter.
_TOKEN_VARIABLE = re.compile(r"<(?:\w+(?:\([^)]*\))?:)?token>")
_NOTHING = re.compile(r"(?!)")


def embeddable_csp() -> str:
    """The CSP of a page other sites may frame: this site and EMBED_ORIGINS only."""
    ancestors = " ".join(["'self'", *current_app.config["EMBED_ORIGINS"]])
    return CSP.replace("frame-ancestors 'none'", f"frame-ancestors {ancestors}")


def token_path_pattern(url_map: Map) -> re.Pattern[str]:
    """A pattern for the token in every path whose route carries ``<token>``.

    Built from the URL map, so a new token route is redacted without anyone
    remembering to add it here. The first group is the path up to the token.
    """
    prefixes = set()
    for rule in url_map.iter_rules():
        if "token" in rule.arguments:
            prefix = _TOKEN_VARIABLE.split(rule.rule, maxsplit=1)[0]
            assert "<" not in prefix, f"{rule.rule}: a token must follow a fixed prefix"
            prefixes.add(prefix)
    if not prefixes:
        return _NOTHING
    alternatives = "|".join(re.escape(p) for p in sorted(prefixes, key=len, reverse=True))
    return re.compile(rf"({alternatives})[^/\s?\"]+")


class RedactTokens(logging.Filter):
    """Keeps signed tokens out of request logs (werkzeug's and ours)."""

    pattern: re.Pattern[str] = _NOTHING

    def redact(self, text: str) -> str:
        """Replace every link token in ``text`` with a placeholder."""
        return self.pattern.sub(r"\1[token]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, Mapping):
            # gunicorn's access log passes one dict of fields (its own mapping
            # type, which answers "-" for a missing header): redact in place.
            for key, value in list(record.args.items()):
                if isinstance(value, str):
                    record.args[key] = self.redact(value)
        elif record.args:
            record.args = tuple(self.redact(a) if isinstance(a, str) else a for a in record.args)
        record.msg = self.redact(str(record.msg))
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
        # Behind a TLS proxy the scheme is https only with TRUSTED_PROXIES set.
        headers.setdefault("Strict-Transport-Security", current_app.config["HSTS"])
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
    clear 400. The API and the ESP webhooks check their JSON themselves and answer
    in their own format, so only their database errors are left to errors.py.
    """
    if "\x00" in request.path:
        if current_app.extensions["token_paths"].match(request.path):
            raise InvalidLink
        abort(404)
    if request.path.startswith(("/api/", "/feedback/")):
        # Reading the form here would fix the body limit before the blueprint sets its own.
        return None
    parts = [v for key, value in request.args.items(multi=True) for v in (key, value)]
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        parts += [v for key, value in request.form.items(multi=True) for v in (key, value)]
        parts += [upload.filename or "" for upload in request.files.values()]
    parts += [value for _name, value in request.headers.items()]
    if any("\x00" in part for part in parts):
        abort(400, description="The request contained a NUL character, which no field accepts.")
    return None


def trust_proxies(app: Flask) -> None:
    """Behind ``TRUSTED_PROXIES`` proxies, take the client's IP and scheme from their headers.

    Only as many X-Forwarded-* hops as there are proxies are believed, so a
    client cannot pick its own IP (rate limits, the consent log) or scheme.
    """
    hops = int(app.config.get("TRUSTED_PROXIES") or 0)
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


# Paths that never use the signed session cookie: bearer-key API, provider webhooks,
# the health check, static files. Their requests neither read nor write it.
SESSIONLESS_PREFIXES = ("/api/", "/feedback/", "/healthz", "/static/")


class PathSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, except on paths that have no use for one.

    There the session is Flask's null session: no cookie is unsigned or set, and
    anything that tried to store in it would fail loudly instead of silently.
    """

    def open_session(self, app, request):
        if request.path.startswith(SESSIONLESS_PREFIXES):
            return self.make_null_session(app)
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    trust_proxies(app)
    app.session_interface = PathSessionInterface()
    app.config.setdefault("WTF_CSRF_SSL_STRICT", False)
    app.before_request(refuse_nul_characters)
    app.before_request(refuse_cross_origin_posts)
    app.after_request(add_headers)
    # Called after every blueprint is registered: the URL map is complete.
    pattern = app.extensions["token_paths"] = token_path_pattern(app.url_map)
    # The loggers are the process's, shared by every app in it (they share routes too).
    RedactTokens.pattern = pattern
    for name in ("werkzeug", "gunicorn.access", "gunicorn.error", app.logger.name):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())
