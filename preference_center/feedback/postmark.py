"""Postmark webhooks: bounce, spam complaint and subscription change records.

Postmark does not sign bodies; the webhook URL carries HTTP basic auth
credentials, compared here in constant time. ``Metadata`` holds what the
sender attached (``pc_list``, e.g. the ``X-PM-Metadata-pc_list`` header).
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

PROVIDER = "postmark"
# Bounce types (Postmark's ``Type``) that end a mailbox, and those that are passing trouble.
HARD = {"HardBounce", "BadEmailAddress"}
SOFT = {"SoftBounce", "DnsError"}
# A subscription change that suppresses sending, by its reason.
SUPPRESSION = {"HardBounce": HARD_BOUNCE, "SpamComplaint": COMPLAINT}


def credentials_match(user: str, password: str, given_user: str, given_password: str) -> bool:
    """Both parts compared in constant time (and both always compared)."""
    same_user = hmac.compare_digest(user.encode(), given_user.encode())
    same_password = hmac.compare_digest(password.encode(), given_password.encode())
    return same_user and same_password


def signals(body: bytes) -> list[Signal]:
    """The record's meaning, if it has one here; raises ``Malformed`` for a non-record."""
    try:
        record = json.loads(body)
    except (UnicodeDecodeError, ValueError) as error:
        raise Malformed("The body is not JSON.") from error
    if not isinstance(record, dict) or text(record.get("RecordType"), 64) is None:
        raise Malformed("Postmark sends a JSON object with a 'RecordType'.")
    record_type = record["RecordType"]
    metadata = record.get("Metadata")
    list_slug = text(metadata.get("pc_list"), 64) if isinstance(metadata, dict) else None
    if record_type == "SubscriptionChange":
        return _subscription_change(record, list_slug)
    if record_type == "Bounce":
        bounce_type = text(record.get("Type"), 64) or ""
        kind = HARD_BOUNCE if bounce_type in HARD else SOFT_BOUNCE if bounce_type in SOFT else None
        event_type = f"Bounce/{bounce_type}"
    elif record_type == "SpamComplaint":
        kind, event_type = COMPLAINT, "SpamComplaint"
    elif record_type == "Delivery":
        kind, event_type = DELIVERED, "Delivery"
    else:
        return []
    if kind is None:
        return []
    # Deliveries carry no ID of their own: the message id names them.
    event_id = text(record.get("ID" if kind != DELIVERED else "MessageID"), 200)
    email = text(record.get("Email" if kind != DELIVERED else "Recipient"))
    if event_id is None or email is None:
        raise Malformed(f"A {record_type} record has an 'ID' and an 'Email'.")
    return [Signal(PROVIDER, event_id, event_type, kind, email, list_slug)]


def _subscription_change(record: dict, list_slug: str | None) -> list[Signal]:
    email, changed_at = text(record.get("Recipient")), text(record.get("ChangedAt"), 64)
    suppress = record.get("SuppressSending")
    if email is None or changed_at is None or not isinstance(suppress, bool):
        raise Malformed("A SubscriptionChange has 'Recipient', 'ChangedAt' and 'SuppressSending'.")
    if not suppress:
        return []  # reactivated at Postmark: that is not the contact's consent here
    reason = text(record.get("SuppressionReason"), 64) or ""
    # A manual suppression by the recipient is Postmark's own unsubscribe link.
    kind = SUPPRESSION.get(reason, UNSUBSCRIBE if reason == "ManualSuppression" else None)
    if kind is None or (kind == UNSUBSCRIBE and record.get("Origin") != "Recipient"):
        return []
    # No ID in these records: the change itself (who, when, what) is the id.
    stream = text(record.get("MessageStream"), 100) or ""
    key = "\n".join(("SubscriptionChange", email.lower(), changed_at, reason, stream))
    event_id = hashlib.sha256(key.encode()).hexdigest()
    return [Signal(PROVIDER, event_id, f"SubscriptionChange/{reason}", kind, email, list_slug)]
