"""Erased addresses, remembered only as a keyed hash so they are never re-added."""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app

from .extensions import db
from .models import Suppression, normalise_email


def email_hash(email: str) -> str:
    """HMAC-SHA256 of the normalised address, keyed with SECRET_KEY (hex)."""
    key = current_app.config["SECRET_KEY"].encode("utf-8")
    return hmac.new(key, normalise_email(email).encode("utf-8"), hashlib.sha256).hexdigest()


def suppressed_address(email: str) -> bool:
    """True when ``email`` was erased and must not be added again."""
    return (
        db.session.execute(
            db.select(Suppression.id).filter_by(email_hash=email_hash(email)).limit(1)
        ).first()
        is not None
    )
