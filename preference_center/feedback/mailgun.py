"""Mailgun webhooks: JSON with ``signature`` and ``event-data``.

``signature.signature`` is the hex HMAC-SHA256 of ``timestamp`` followed by
``token``, keyed with the webhook signing key. Variables the sender attached
(``v:pc_list`` or ``X-Mailgun-Variables``) arrive in ``user-variables``.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from ..esp_feedback import (
    COMPLAINT,
    DELIVERED,
    HARD_BOUNCE,
    SOFT_BOUNCE,
    UNSUBSCRIBE,
    Malformed,
    Signal,
    text,
)

PROVIDER = "mailgun"
KINDS = {"complained": COMPLAINT, "unsubscribed": UNSUBSCRIBE, "delivered": DELIVERED}


def parse(body: bytes) -> dict:
    """The JSON object Mailgun posts; raises ``Malformed`` otherwise."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise Malformed("The body is not JSON.") from error
    if not isinstance(payload, dict):
        raise Malformed("Mailgun sends a JSON object.")
    return payload


def signature_of(payload: dict) -> tuple[str, str, str] | None:
    """(timestamp, token, signature) from the payload, or None when they are missing."""
    signature = payload.get("signature")
    if not isinstance(signature, dict):
        return None
    parts = tuple(text(signature.get(k), 1000) for k in ("timestamp", "token", "signature"))
    return None if None in parts else parts


def verify(signing_key: str, timestamp: str, token: str, signature: str) -> bool:
    """True if ``signature`` is the HMAC-SHA256 of timestamp + token under the key."""
    expected = hmac.new(
        signing_key.encode(), (timestamp + token).encode(), hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, signature.lower())


def signals(payload: dict) -> list[Signal]:
    """The one event of the payload if it matters; raises ``Malformed`` without event data."""
    data = payload.get("event-data")
    if not isinstance(data, dict) or text(data.get("event"), 64) is None:
        raise Malformed("Mailgun sends 'event-data' with an 'event'.")
    event_type = data["event"].strip()
    kind = KINDS.get(event_type)
    if event_type == "failed":
        kind = HARD_BOUNCE if data.get("severity") == "permanent" else SOFT_BOUNCE
    if kind is None:
        return []
    event_id, email = text(data.get("id"), 200), text(data.get("recipient"))
    if event_id is None or email is None:
        raise Malformed(f"A {event_type} event has an 'id' and a 'recipient'.")
    variables = data.get("user-variables")
    list_slug = text(variables.get("pc_list"), 64) if isinstance(variables, dict) else None
    return [Signal(PROVIDER, event_id, event_type, kind, email, list_slug)]
