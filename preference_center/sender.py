"""For senders who use this package directly: the one-click headers for an email.

    from preference_center.sender import headers_for

    with app.app_context():
        message.update(headers_for("pat@example.com", "market-insights"))

The values are the ones ``POST /api/v1/links`` returns.
"""

from __future__ import annotations

from . import tokens
from .addresses import contact_by_email
from .extensions import db
from .models import Contact, MailingList

ONE_CLICK = "List-Unsubscribe=One-Click"


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


def headers_for(email: str, list_slug: str) -> dict[str, str]:
    """The List-Unsubscribe headers for mail of ``list_slug`` to ``email``.

    Raises ``UnknownRecipient`` for an unknown address or list. Needs an app context.
    """
    contact = contact_with(email)
    if contact is None:
        raise UnknownRecipient(f"No contact has the address {email}.")
    exists = db.session.execute(db.select(MailingList.id).filter_by(slug=list_slug)).first()
    if exists is None:
        raise UnknownRecipient(f"There is no list {list_slug!r}.")
    return one_click_headers(contact, list_slug)
