"""The consent log: per-contact hash chains, appending, and verification.

Canonical form of an event (what its hash covers), documented in the README:
a JSON object of the fields in ``HASHED_FIELDS``, keys sorted, no spaces
(separators ``,`` and ``:``), non-ASCII kept as UTF-8, ``null`` for missing
values, ``occurred_at`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``. The hash is
``sha256(prev_hash + canonical)`` in lower-case hex, with ``prev_hash`` the
empty string for a contact's first event.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .extensions import db
from .models import ConsentEvent, Contact

HASHED_FIELDS = (
    "contact",
    "list",
    "request_id",
    "action",
    "from_state",
    "to_state",
    "basis",
    "source",
    "channel",
    "actor",
    "occurred_at",
    "ip",
    "user_agent",
    "notice_version",
    "evidence",
    "detail",
    "prev_hash",
)


def format_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(fields: dict[str, Any]) -> str:
    """The exact text an event's hash is computed over."""
    return json.dumps(
        {name: fields.get(name) for name in HASHED_FIELDS},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def event_hash(fields: dict[str, Any]) -> str:
    text = (fields.get("prev_hash") or "") + canonical(fields)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hashed_fields(event: ConsentEvent, contact_public_id: str, list_slug: str | None) -> dict:
    """The fields of a stored event in the shape the hash covers."""
    return {
        "contact": contact_public_id,
        "list": list_slug,
        "request_id": event.request_id,
        "action": event.action,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "basis": event.basis,
        "source": event.source,
        "channel": event.channel,
        "actor": event.actor,
        "occurred_at": format_time(event.occurred_at),
        "ip": event.ip,
        "user_agent": event.user_agent,
        "notice_version": event.notice_version,
        "evidence": event.evidence,
        "detail": event.detail,
        "prev_hash": event.prev_hash,
    }


def append(contact: Contact, event: ConsentEvent, list_slug: str | None) -> ConsentEvent:
    """Chain ``event`` onto ``contact``'s log and add it to the session.

    The caller holds the contact's row lock (see ``consent.lock_contact``) so
    two writers for one contact cannot both extend the same head.
    """
    event.contact_id = contact.id
    event.prev_hash = contact.chain_head
    event.hash = event_hash(hashed_fields(event, contact.public_id, list_slug))
    contact.chain_head = event.hash
    db.session.add(event)
    return event


@dataclass
class ChainProblem:
    event_id: int | None
    contact_public_id: str
    message: str
