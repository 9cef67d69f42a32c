"""For senders who use this package directly: the one-click headers for an email.

    from preference_center.sender import headers_for

    with app.app_context():
        message.update(headers_for("pat@example.com", "market-insights"))

The values are the ones ``POST /api/v1/links`` returns. Sending through an
ESP over SMTP, ``headers_for(..., esp="sendgrid")`` (or ``"mailgun"``,
``"postmark"``) adds the header that carries ``pc_list`` into that provider's
events, so its complaints and unsubscribes name the list (``/feedback/…``).
"""

from __future__ import annotations

import json

from . import tokens
from .addresses import contact_by_email
from .extensions import db
from .models import Contact, MailingList

ONE_CLICK = "List-Unsubscribe=One-Click"
# The custom argument / user variable / metadata key the feedback webhooks read.
LIST_KEY = "pc_list"
ESPS = ("sendgrid", "mailgun", "postmark")


class UnknownRecipient(LookupError):
    """No contact has that address, or no list has that slug."""


def one_click_headers(contact: Contact, list_slug: str) -> dict[str, str]:
    """RFC 8058: one HTTPS URI in angle brackets, and the one-click POST marker."""
    return {
        "List-Unsubscribe": f"<{tokens.unsubscribe_url(contact, list_slug)}>",
        "List-Unsubscribe-Post": ONE_CLICK,
    }


def contact_with(email: str) -> Contact | None:
    """The (not erased) contact who owns ``email`` (an unverified address: nobody)."""
    return contact_by_email(email)


def feedback_metadata(list_slug: str) -> dict[str, str]:
    """What to attach as SendGrid custom args, Mailgun variables or Postmark metadata."""
    return {LIST_KEY: list_slug}


def esp_headers(list_slug: str, esp: str) -> dict[str, str]:
    """The SMTP header through which ``esp`` puts ``pc_list`` into its events."""
    metadata = feedback_metadata(list_slug)
    if esp == "sendgrid":
        return {"X-SMTPAPI": json.dumps({"unique_args": metadata})}
    if esp == "mailgun":
        return {"X-Mailgun-Variables": json.dumps(metadata)}
    if esp == "postmark":
        return {f"X-PM-Metadata-{LIST_KEY}": list_slug}
    raise ValueError(f"Unknown ESP {esp!r}; use one of {', '.join(ESPS)}.")


def headers_for(email: str, list_slug: str, esp: str | None = None) -> dict[str, str]:
    """The List-Unsubscribe headers for mail of ``list_slug`` to ``email``.

    With ``esp`` also the header that names the list in that provider's
    feedback events. Raises ``UnknownRecipient`` for an unknown address or
    list. Needs an app context.
    """
    contact = contact_with(email)
    if contact is None:
        raise UnknownRecipient(f"No contact has the address {email}.")
    exists = db.session.execute(db.select(MailingList.id).filter_by(slug=list_slug)).first()
    if exists is None:
        raise UnknownRecipient(f"There is no list {list_slug!r}.")
    headers = one_click_headers(contact, list_slug)
    if esp is not None:
        headers.update(esp_headers(list_slug, esp))
    return headers
