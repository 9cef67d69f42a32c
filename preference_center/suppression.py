"""Erasure tombstones: what is left of an erased address, so it is never re-added.

A tombstone holds a keyed hash of the normalised address (HMAC-SHA256), its
scope and its date; never the address. The key is derived from
``SUPPRESSION_KEY`` if set, else from ``SECRET_KEY``, so the table cannot be
reversed with a list of guessed addresses without the key. Rotating the key
orphans existing tombstones: set ``SUPPRESSION_KEY`` to the old secret before
rotating ``SECRET_KEY``.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app

from .extensions import db
from .models import Suppression, normalise_email

ALL = "all"
# Bound parameters per IN (...) query: well under every database's limit.
CHUNK = 500
# A fixed label, so the derived key serves tombstones and nothing else.
_KEY_LABEL = b"preference-center suppression tombstone v1"


def _key() -> bytes:
    secret = current_app.config.get("SUPPRESSION_KEY") or current_app.config["SECRET_KEY"]
    return hmac.new(secret.encode("utf-8"), _KEY_LABEL, hashlib.sha256).digest()


def suppression_key(email: str) -> str:
    """The keyed hash stored for ``email`` (lower-case hex), whatever its case or spaces."""
    return hmac.new(_key(), normalise_email(email).encode("utf-8"), hashlib.sha256).hexdigest()


# The name the importer and the API use.
address_hash = suppression_key


def suppressed_address(email: str | None) -> bool:
    """True if ``email`` was erased: any tombstone, whatever its scope, blocks it."""
    if not email:
        return False
    found = db.session.execute(
        db.select(Suppression.id).where(Suppression.email_hash == suppression_key(email)).limit(1)
    ).first()
    return found is not None


def suppressed_addresses(emails: list[str]) -> set[str]:
    """The erased ones among ``emails`` (normalised), in a few queries for many."""
    key = _key()  # derived once for the whole set
    by_hash = {
        hmac.new(key, normalise_email(email).encode("utf-8"), hashlib.sha256).hexdigest(): (
            normalise_email(email)
        )
        for email in emails
    }
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


def add_tombstone(email: str, scope: str = ALL, reason: str = "erasure") -> Suppression:
    """Remember ``email`` as suppressed (idempotent); the caller commits."""
    email_hash = suppression_key(email)
    existing = db.session.execute(
        db.select(Suppression).filter_by(email_hash=email_hash, scope=scope)
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    tombstone = Suppression(email_hash=email_hash, scope=scope, reason=reason)
    db.session.add(tombstone)
    return tombstone


# The name the importer uses.
suppress = add_tombstone
