"""Getting a contact a working manage link: on request, and after a reset."""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext

from . import mailer
from .addresses import contact_by_email
from .consent import Via, lock_contact, record
from .models import Contact


def find_contact(email: str) -> Contact | None:
    """The contact whose address on file (or verified address) is ``email``."""
    return contact_by_email(email)


def send_fresh_link(email: str) -> None:
    """Queue a fresh manage link to ``email`` if it belongs to a contact.

    The caller answers the same whatever happens here. The mail goes to the
    stored address, never to the text that was typed.
    """
    contact = find_contact(email)
    if contact is None:
        return
    queue_link_mail(contact)


def queue_link_mail(contact: Contact) -> None:
    mailer.queue(
        "fresh_link",
        contact.primary_email,
        lazy_gettext(
            "Your email preferences for %(organisation)s",
            organisation=current_app.config["ORGANISATION_NAME"],
        ),
        "fresh_link",
        contact=contact,
    )


def reset(contact: Contact, via: Via) -> None:
    """Revoke every manage link issued so far and email a new one.

    One-click unsubscribe links do not check the version: saying no keeps
    working from any old email.
    """
    contact = lock_contact(contact)
    contact.token_version += 1
    record(contact, via, "links_reset", detail=f"token version {contact.token_version}")
    queue_link_mail(contact)
