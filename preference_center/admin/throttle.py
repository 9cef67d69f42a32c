"""Failed admin logins slow the next attempt down, per address and per IP.

After ``ADMIN_LOGIN_FREE_FAILURES`` failures for a key, each further failure
makes the next attempt wait twice as long as the last (from
``ADMIN_LOGIN_BACKOFF_SECONDS`` up to ``ADMIN_LOGIN_MAX_BACKOFF_SECONDS``).
While a key waits, every attempt is refused before the password is checked, so
guessing gains nothing; once the wait is over the right password works again
and resets the count. Nothing is ever locked for good. The counts live in the
database, so every worker process sees them and a restart does not forget them.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import LoginThrottle, normalise_email, utcnow


def keys_for(email: str, ip: str | None) -> list[str]:
    """One key for the attempted address (hashed: no address in this table), one for the IP."""
    digest = hashlib.sha256(normalise_email(email).encode("utf-8", "replace")).hexdigest()
    return [f"email:{digest[:48]}", f"ip:{(ip or 'unknown')[:64]}"]


def wait_seconds(keys: list[str], now: datetime | None = None) -> int:
    """How long the next attempt for any of ``keys`` has to wait (0: it may go ahead)."""
    now = now or utcnow()
    until = db.session.execute(
        db.select(db.func.max(LoginThrottle.blocked_until)).where(LoginThrottle.key.in_(keys))
    ).scalar_one_or_none()
    if until is None or until <= now:
        return 0
    return max(1, math.ceil((until - now).total_seconds()))


def _delay(failures: int) -> timedelta:
    config = current_app.config
    free = config.get("ADMIN_LOGIN_FREE_FAILURES", 4)
    if failures <= free:
        return timedelta(0)
    base = config.get("ADMIN_LOGIN_BACKOFF_SECONDS", 15)
    ceiling = config.get("ADMIN_LOGIN_MAX_BACKOFF_SECONDS", 900)
    return timedelta(seconds=min(base * 2 ** min(failures - free - 1, 32), ceiling))


def record_failure(keys: list[str], now: datetime | None = None) -> None:
    """Count one failed attempt for each key and set when the next one may come."""
    now = now or utcnow()
    for key in keys:
        row = db.session.execute(
            db.select(LoginThrottle).filter_by(key=key).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            row = LoginThrottle(key=key, failures=0)
            try:
                with db.session.begin_nested():
                    db.session.add(row)
            except IntegrityError:  # a concurrent failure made the row first
                row = db.session.execute(
                    db.select(LoginThrottle).filter_by(key=key).with_for_update()
                ).scalar_one()
        row.failures += 1
        row.last_failure_at = now
        delay = _delay(row.failures)
        row.blocked_until = now + delay if delay else None


def reset(keys: list[str]) -> None:
    """A successful login forgets the failures of its address and IP."""
    db.session.execute(db.delete(LoginThrottle).where(LoginThrottle.key.in_(keys)))
