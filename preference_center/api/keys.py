"""API keys: shown once, stored as a SHA-256 hash, scoped, revocable.

A key reads ``pc_<8 hex>.<secret>``. The part before the dot is the key's
prefix: stored in clear, unique, safe to show in lists and logs. Only the hash
of the whole key is stored; the secret carries 256 random bits, so a plain
SHA-256 (no slow hash) is enough and keeps every API request cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..extensions import db
from ..models import ApiKey, utcnow

LINKS = "links"
CONSENT_READ = "consent:read"
CONTACTS_WRITE = "contacts:write"
EVENTS_READ = "events:read"
SCOPES = (LINKS, CONSENT_READ, CONTACTS_WRITE, EVENTS_READ)

# last_used_at is a hint for admins, not an audit trail: writing it at most
# once a minute keeps the read path (GET /consent) free of writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyError(ValueError):
    """A key that cannot be created or changed as asked."""


@dataclass(frozen=True)
class Caller:
    """The verified key behind one API request."""

    id: int
    name: str
    prefix: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        return f"api:{self.name}"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_scopes(text: str) -> list[str]:
    """Scope names from a comma- or space-separated string; unknown names raise."""
    scopes = [s for s in text.replace(",", " ").split() if s]
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ApiKeyError(f"Unknown scope(s) {', '.join(unknown)}; use {', '.join(SCOPES)}.")
    if not scopes:
        raise ApiKeyError(f"Give at least one scope: {', '.join(SCOPES)}.")
    return [s for s in SCOPES if s in scopes]


def create(name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """Add a key to the session; returns the row and the key (shown once, never stored)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ApiKeyError("A key needs a name of 1 to 200 characters.")
    scopes = parse_scopes(" ".join(scopes))
    prefix = "pc_" + secrets.token_hex(4)
    key = f"{prefix}.{secrets.token_urlsafe(32)}"
    row = ApiKey(name=name, prefix=prefix, key_hash=hash_key(key), scopes=" ".join(scopes))
    db.session.add(row)
    return row, key


def verify(key: str, *, read_only: bool, now: datetime | None = None) -> Caller | None:
    """The caller a presented key belongs to, or None for a wrong, unknown or revoked key.

    ``read_only`` says the request writes nothing else (GET/HEAD).
    """
    prefix, dot, _secret = key.partition(".")
    if not dot or len(prefix) > 16:
        return None
    row = db.session.execute(
        db.select(
            ApiKey.id,
            ApiKey.name,
            ApiKey.key_hash,
            ApiKey.scopes,
            ApiKey.revoked_at,
            ApiKey.last_used_at,
        ).where(ApiKey.prefix == prefix)
    ).one_or_none()
    # Compare digests in constant time so timing does not reveal a near miss.
    if row is None or not hmac.compare_digest(row.key_hash, hash_key(key)):
        return None
    if row.revoked_at is not None:
        return None
    now = now or utcnow()
    if row.last_used_at is None or row.last_used_at < now - LAST_USED_RESOLUTION:
        _touch(row.id, now, read_only)
    return Caller(row.id, row.name, prefix, frozenset(row.scopes.split()))


def _touch(key_id: int, now: datetime, read_only: bool) -> None:
    """Record the use of a key.

    A read-only request ends its read transaction first and commits the update
    on its own: on SQLite a read snapshot cannot always be upgraded to a write.
    A writing request already holds the write lock, so the update joins it.
    """
    if read_only:
        db.session.rollback()
    db.session.execute(
        db.update(ApiKey)
        .where(
            ApiKey.id == key_id,
            ApiKey.last_used_at.is_(None) | (ApiKey.last_used_at < now - LAST_USED_RESOLUTION),
        )
        .values(last_used_at=now)
    )
    if read_only:
        db.session.commit()


def find(prefix: str) -> ApiKey | None:
    return db.session.execute(db.select(ApiKey).filter_by(prefix=prefix)).scalar_one_or_none()


def revoke(prefix: str) -> ApiKey:
    """Revoke the key with ``prefix``; requests with it fail from now on."""
    row = find(prefix.partition(".")[0])
    if row is None:
        raise ApiKeyError(f"No API key has the prefix {prefix}.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def all_keys() -> list[ApiKey]:
    return list(db.session.execute(db.select(ApiKey).order_by(ApiKey.id)).scalars())
