"""ARF (RFC 5965) feedback reports from mailbox providers' feedback loops.

A report is ``multipart/report; report-type=feedback-report`` with a
``message/feedback-report`` part (``Feedback-Type``, optionally
``Original-Rcpt-To``) and the original message or its headers
(``message/rfc822`` or ``text/rfc822-headers``). Mailbox providers often
redact the recipient, so the original's ``List-Unsubscribe`` one-click URL
(signed: contact and list) is read first; else its recipient and ``List-Id``.
"""

from __future__ import annotations

import hashlib
import re
from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from email.parser import HeaderParser

from .. import tokens
from ..esp_feedback import COMPLAINT, Malformed, Signal, text

PROVIDER = "arf"
# Feedback types that are a complaint about mail the contact did not want.
COMPLAINT_TYPES = {"abuse", "fraud"}
_URI = re.compile(r"<([^<>\s]+)>")
_ADDRESS = re.compile(r"[^\s<>,;:\"]+@[^\s<>,;:\"]+")


def signal(raw: bytes, public_base_url: str) -> Signal | None:
    """What the report says, or None for a feedback type that is no complaint.

    Raises ``Malformed`` when ``raw`` is not a feedback report.
    """
    report = message_from_bytes(raw, policy=policy.default)
    if (
        report.get_content_type() != "multipart/report"
        or (report.get_param("report-type") or "").lower() != "feedback-report"
    ):
        raise Malformed("Not an ARF report (multipart/report; report-type=feedback-report).")
    fields, original = None, None
    for part in report.iter_parts():
        content_type = part.get_content_type()
        if content_type == "message/feedback-report":
            fields = _headers_of(part)
        elif content_type in ("message/rfc822", "text/rfc822-headers"):
            original = _headers_of(part)
    if fields is None or not fields.get("Feedback-Type"):
        raise Malformed("The report has no message/feedback-report part with a Feedback-Type.")
    feedback_type = str(fields["Feedback-Type"]).strip().lower()
    if feedback_type not in COMPLAINT_TYPES:
        return None
    event_id = _event_id(original, report, raw)
    contact_id, list_slug = _one_click(original, public_base_url)
    email = None
    if contact_id is None:
        email = _address(fields.get("Original-Rcpt-To")) or _address(
            original.get("To") if original is not None else None
        )
        list_slug = _list_id_slug(original, public_base_url)
        if email is None:
            raise Malformed("The report names no recipient and carries no one-click link.")
    return Signal(PROVIDER, event_id, feedback_type, COMPLAINT, email, list_slug, contact_id)


def _headers_of(part: EmailMessage) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list):  # message/* parts parse into a message
        return payload[0] if payload else None
    content = part.get_payload(decode=True) or b""
    return HeaderParser(policy=policy.default).parsestr(content.decode("utf-8", "replace"))


def _event_id(original: Message | None, report: Message, raw: bytes) -> str:
    """One complaint per original message; else the report's id; else the report itself."""
    for message in (original, report):
        message_id = text(str(message.get("Message-ID") or ""), 190) if message else None
        if message_id:
            return f"{'original' if message is original else 'report'}:{message_id}"
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _one_click(original: Message | None, base_url: str) -> tuple[str | None, str | None]:
    """The contact and list a valid one-click URL of ours in List-Unsubscribe names."""
    if original is None:
        return None, None
    prefix = base_url.rstrip("/") + "/u/"
    for uri in _URI.findall(str(original.get("List-Unsubscribe") or "")):
        if not uri.startswith(prefix):
            continue
        try:
            claims = tokens.verify(tokens.UNSUBSCRIBE, uri[len(prefix) :], check_version=False)
        except tokens.InvalidLink:
            continue
        return claims.contact.public_id, text(claims.scope.get("l"), 64)
    return None, None


def _address(value: object) -> str | None:
    match = _ADDRESS.search(str(value or ""))
    return match.group(0).lower() if match else None


def _list_id_slug(original: Message | None, base_url: str) -> str | None:
    """``List-Id: Name <slug.host>`` (as mailer.list_headers writes it) → slug."""
    if original is None:
        return None
    host = base_url.split("//", 1)[-1].split("/")[0].split(":")[0]
    for list_id in _URI.findall(str(original.get("List-Id") or "")):
        if list_id.endswith("." + host):
            return text(list_id[: -len(host) - 1], 64)
    return None
