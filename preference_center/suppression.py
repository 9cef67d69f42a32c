"""Erasure tombstones: a keyed hash of an address that may never be re-added.

The hash is HMAC-SHA256 of the normalised address keyed with SECRET_KEY, so
the table holds no address and cannot be reversed with a list of guesses
without the key. Rotating SECRET_KEY orphans existing tombstones.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app

from .extensions import db
from .models import Suppression, normalise_email

# Bound parameters per IN (...) query: well under every database's limit.
CHUNK = 500


def address_hash(email: str) -> str:
    """The keyed hash stored for ``email`` (lower-case hex)."""
    key = current_app.config["SECRET_KEY"].encode("utf-8")
    return hmac.new(key, normalise_email(email).encode("utf-8"), hashlib.sha256).hexdigest()


def suppressed_address(email: str) -> bool:
    """True if ``email`` was erased: any tombstone, whatever its scope, blocks it."""
    found = db.session.execute(
        db.select(Suppression.id).where(Suppression.email_hash == address_hash(email)).limit(1)
    ).first()
    return found is not None


def suppressed_addresses(emails: list[str]) -> set[str]:
    """The erased ones among ``emails`` (normalised), in a few queries for many."""
    by_hash = {address_hash(email): normalise_email(email) for email in emails}
    hashes = list(by_hash)
    found: set[str] = set()
    for start in range(0, len(hashes), CHUNK):
        found.update(
            db.session.execute(
                db.select(Suppression.email_hash).where(
                    Suppression.email_hash.in_(hashes[start : start + CHUNK])
                )
            ).scalars()
        )
    return {by_hash[email_hash] for email_hash in found}


def suppress(email: str, scope: str = "all", reason: str = "erasure") -> Suppression:
    """Add a tombstone for ``email`` (idempotent); the caller commits."""
    email_hash = address_hash(email)
    existing = db.session.execute(
        db.select(Suppression).filter_by(email_hash=email_hash, scope=scope)
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    tombstone = Suppression(email_hash=email_hash, scope=scope, reason=reason)
    db.session.add(tombstone)
    return tombstone
