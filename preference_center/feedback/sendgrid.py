"""SendGrid's signed Event Webhook: a JSON array of events, ECDSA-signed.

The signature (``X-Twilio-Email-Event-Webhook-Signature``, base64 DER) covers
the ``X-Twilio-Email-Event-Webhook-Timestamp`` value followed by the raw body;
the public key SendGrid shows is base64 DER SubjectPublicKeyInfo. Custom args
the sender attached (``pc_list``) arrive as top-level keys of each event.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

# cryptography is imported where a signature is checked, not by every process
# that loads the app (see dkim_signing).

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
PROVIDER = "sendgrid"
# ``deferred`` and ``dropped`` are left alone: SendGrid retries the one and
# suppressed the other itself; counting them would mark good mailboxes.
KINDS = {
    "spamreport": COMPLAINT,
    "unsubscribe": UNSUBSCRIBE,
    "group_unsubscribe": UNSUBSCRIBE,
    "delivered": DELIVERED,
}


def public_key(setting: str) -> ec.EllipticCurvePublicKey:
    """The key from ``SENDGRID_WEBHOOK_PUBLIC_KEY``; ValueError if it is not a P-256 key."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_der_public_key(base64.b64decode("".join(setting.split()), validate=True))
    except (binascii.Error, ValueError, UnsupportedAlgorithm) as error:
        raise ValueError("SENDGRID_WEBHOOK_PUBLIC_KEY is not a base64 DER public key") from error
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("SENDGRID_WEBHOOK_PUBLIC_KEY is not a P-256 key")
    return key


def verify(key: ec.EllipticCurvePublicKey, signature: str, timestamp: str, body: bytes) -> bool:
    """True if ``signature`` signs ``timestamp`` followed by the raw ``body``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        der = base64.b64decode(signature.strip(), validate=True)
        key.verify(der, timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, UnicodeEncodeError, InvalidSignature):
        return False
    return True


def signals(body: bytes) -> list[Signal]:
    """The events that matter, in order; ``Malformed`` unless an array of events."""
    try:
        events = json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise Malformed("The body is not JSON.") from error
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise Malformed("SendGrid sends a JSON array of event objects.")
    found = []
    for event in events:
        event_type = text(event.get("event"), 64)
        if event_type is None:
            raise Malformed("Every event has an 'event'.")
        kind = KINDS.get(event_type)
        if event_type == "bounce":
            # type "bounce" is permanent; "blocked" is the receiver refusing for now.
            kind = SOFT_BOUNCE if event.get("type") == "blocked" else HARD_BOUNCE
        if kind is None:
            continue
        event_id, email = text(event.get("sg_event_id"), 200), text(event.get("email"))
        if event_id is None or email is None:
            raise Malformed(f"A {event_type} event has an 'sg_event_id' and an 'email'.")
        found.append(
            Signal(PROVIDER, event_id, event_type, kind, email, text(event.get("pc_list"), 64))
        )
    return found
