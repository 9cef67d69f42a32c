"""Where rate limits count, and what happens when that storage is unreachable.

One storage for every instance and worker (Redis, README "Scale-out"):
``RATELIMIT_STORAGE_URI`` if set, else ``REDIS_URL``, else per-process memory.

Redis unreachable, decided per route:

- the pages, the one-click, every withdrawal: no limit, never a Redis call;
- page actions that mail the contact, the API: counted in this process's
  memory meanwhile (Flask-Limiter's in-memory fallback, with a log line), back
  to Redis by themselves once it answers;
- the fresh-link form and the signup form, which mail an address anyone can
  type: refused with a clean 503 page while the shared counters are down, as
  per-process counts would let N instances × W workers flood a stranger's inbox.

A Redis that stops answering costs a request at most ``REDIS_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from flask import Blueprint, Flask, current_app, request
from flask.logging import default_handler
from flask_babel import gettext as _

from .errors import error_page
from .extensions import limiter

REDIS_TIMEOUT_SECONDS = 0.5
REDIS_SCHEMES = ("redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster")


def storage_uri(config) -> str:
    """The storage the limits use: RATELIMIT_STORAGE_URI, else REDIS_URL, else memory."""
    return config.get("RATELIMIT_STORAGE_URI") or config.get("REDIS_URL") or "memory://"


def is_shared(uri: str) -> bool:
    """Do all processes count together in this storage (anything but memory://)?"""
    return not uri.startswith("memory://")


def describe(uri: str) -> str:
    """The storage URI fit for a log line: any password replaced by ***."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


# Blueprints limited as a whole (the API): Flask-Limiter checks those before the view.
# Limits on a view (``@limiter.limit``) are checked by the view's own wrapper.
_LIMITED_BLUEPRINTS: set[str] = set()


def limit_blueprint(blueprint: Blueprint, rate: Callable[[], str], key_func: Callable) -> None:
    """Limit every route of ``blueprint`` at ``rate`` per ``key_func`` bucket."""
    limiter.limit(rate, key_func=key_func)(blueprint)
    _LIMITED_BLUEPRINTS.add(blueprint.name)


def _check_limited_blueprints() -> None:
    """Flask-Limiter's before-request check, only where a blueprint limit can apply.

    The app sets no default or application-wide limit, so on every other route
    the check would find nothing: skipping it keeps the pages, the one-click and
    the health check from paying for the limiter.
    """
    if request.blueprint in _LIMITED_BLUEPRINTS:
        limiter._check_request_limit()


def _only_where_limited(app: Flask) -> None:
    assert not app.config.get("RATELIMIT_DEFAULT") and not app.config.get("RATELIMIT_APPLICATION")
    hooks = app.before_request_funcs.setdefault(None, [])
    hooks[hooks.index(limiter._check_request_limit)] = _check_limited_blueprints


def init_app(app: Flask) -> None:
    """Point the limiter at its storage (with timeouts for Redis) and initialise it."""
    uri = storage_uri(app.config)
    app.config["RATELIMIT_STORAGE_URI"] = uri
    if urlsplit(uri).scheme in REDIS_SCHEMES:
        options = app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {})
        options.setdefault("socket_connect_timeout", REDIS_TIMEOUT_SECONDS)
        options.setdefault("socket_timeout", REDIS_TIMEOUT_SECONDS)
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    # Under gevent, requests already waiting on Redis when one of them switches to
    # the fallback would raise (Flask-Limiter only falls back once): let those few
    # through uncounted, with a log line, rather than answer 500.
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    # The limiter is one object for every app made in this process: a new app
    # starts on its own storage, not on the last one's fallback.
    limiter._storage_dead = False
    limiter.init_app(app)
    _only_where_limited(app)
    _show_storage_changes()


class _StorageChanges(logging.Filter):
    """Flask-Limiter's warnings, and its "storage recovered" line (logged at info)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or "storage" in record.getMessage()


def _show_storage_changes() -> None:
    # Flask-Limiter's logger has only a NullHandler: its fallback line would be lost.
    limiter_log = logging.getLogger("flask-limiter")
    if default_handler not in limiter_log.handlers:
        limiter_log.addHandler(default_handler)
        limiter_log.addFilter(_StorageChanges())
        limiter_log.setLevel(logging.INFO)
        limiter_log.propagate = False


def shared_counters_up() -> bool:
    """Can the shared storage be reached now? (Always, for per-process memory.)"""
    if not is_shared(current_app.config["RATELIMIT_STORAGE_URI"]):
        return True
    try:
        return bool(limiter.storage.check())
    except Exception:  # noqa: BLE001 - any failure to answer is "down"
        return False


def shared_counters_required(view: Callable) -> Callable:
    """Refuse the request (a 503 page) while the shared rate-limit storage is down."""

    @functools.wraps(view)
    def guarded(*args, **kwargs):
        if not shared_counters_up():
            current_app.logger.warning(
                "Rate limit storage unreachable: %s refused until it answers", view.__name__
            )
            return error_page(
                503,
                _("This form is briefly unavailable. Please try again in a few minutes."),
                "unavailable",
            )
        return view(*args, **kwargs)

    return guarded
