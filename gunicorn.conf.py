"""Gunicorn's settings for production (`make serve`, or a bare `gunicorn app:app`).

Workers are gevent's: each connection is a greenlet, so a client that sends
half a request and waits (or reads slowly) holds a few kilobytes, not a worker.
Sync workers would give every such client a whole worker until `timeout`.
Database work is unchanged: a greenlet never yields inside a SQLite
transaction (there is no network I/O in one), so writers queue on SQLite's
lock as with sync workers, not as with gthread (dependency-notes.md item 15).

This file is read in gunicorn's master before gevent patches anything: it
imports nothing of the app.
"""

import os

from dotenv import load_dotenv

load_dotenv(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".env"))

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gevent"
# Open connections per worker, idle or not.
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "1000"))
# A request that takes longer than this (a stuck worker) is killed and restarted.
timeout = 30
graceful_timeout = 30
# Seconds an idle keep-alive connection stays open.
keepalive = 5
# Request line and headers: gunicorn's limits, stated here so they are seen.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190

# The access log goes to $ACCESS_LOG (a file) or standard output; tokens in
# paths are redacted by the app's log filter (preference_center/security.py).
accesslog = os.environ.get("ACCESS_LOG") or "-"
errorlog = os.environ.get("ERROR_LOG") or "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'


def rate_limit_storage() -> str:
    """Where the limits count; the app's rule (preference_center/rate_limits.py)."""
    return os.environ.get("RATELIMIT_STORAGE_URI") or os.environ.get("REDIS_URL") or "memory://"


def redacted(uri: str) -> str:
    scheme, _, rest = uri.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.partition(":")[0]
        return f"{scheme}://{user}:***@{host}"
    return uri


def on_starting(server):
    """Say which storage the rate limits use, and warn when it is per process."""
    storage = rate_limit_storage()
    if not storage.startswith("memory://"):
        server.log.info(
            "Rate limits count in %s, shared by every worker and instance.", redacted(storage)
        )
    elif server.cfg.workers > 1:
        server.log.warning(
            "RATELIMIT_STORAGE_URI is %s with %d workers: every worker keeps its own "
            "counts (each limit is %d times as loose) and a restart forgets them. "
            'Set REDIS_URL=redis://… for production (README, "Scale-out").',
            storage,
            server.cfg.workers,
            server.cfg.workers,
        )
    else:
        server.log.info("Rate limits count in this one worker's memory (%s).", storage)


# No control socket: it lives at one path per user, which several instances on
# one machine would share. Signals (HUP, TERM, TTIN/TTOU) still manage gunicorn.
control_socket_disable = True
