"""The hosted signup form's one job: ask for a confirmation, whoever typed the address.

The form is public, so anyone can type anyone's address: nothing is sendable
until the mailbox confirms (double opt-in), and nothing here tells the caller
whether the address was known.
"""

from __future__ import annotations

from . import consent, suppression
from .consent import ConsentError, Via
from .extensions import db
from .importers import valid_email
from .models import Address, Contact, MailingList, normalise_email


def wording(mailing_lists: list[MailingList]) -> str:
    """The sentence the form shows above its button; the evidence quotes it."""
    names = " and ".join(f'"{m.name}"' for m in mailing_lists)
    return (
        f"Send me {names} by email. I will confirm by the link you email me, "
        "and I can unsubscribe at any time."
    )


def usable_email(email: str) -> str | None:
    """The normalised address if mail can be delivered to it, else ``None``."""
    email = normalise_email(email or "")
    return email if valid_email(email) else None


def _contact_for(email: str, name: str | None) -> Contact | None:
    """The contact behind ``email``, created if unknown; ``None`` if erased."""
    address = db.session.execute(db.select(Address).filter_by(email=email)).scalar_one_or_none()
    if address is not None:
        contact = address.contact
        # A stranger typing a known address must not rename its contact.
        return None if contact.erased_at is not None else contact
    contact = Contact(name=(name or "").strip()[:200] or None)
    contact.addresses.append(Address(email=email, kind="personal"))
    db.session.add(contact)
    db.session.flush()
    return contact


def sign_up(
    email: str, name: str | None, mailing_lists: list[MailingList], via: Via, *, evidence: str
) -> int:
    """Ask ``email`` to confirm each list; returns how many confirmations were queued.

    Every list becomes ``pending`` through ``consent.opt_in`` and its
    confirmation email is queued in the caller's transaction. Lists the rules
    refuse (declined business mail, an archived list), lists already received
    and erased addresses are passed over without a word: the caller answers
    the same in every case.
    """
    if suppression.suppressed_address(email):
        return 0
    contact = _contact_for(email, name)
    if contact is None:
        return 0
    queued = 0
    for mailing_list in mailing_lists:
        try:
            outcome = consent.opt_in(
                contact,
                mailing_list,
                via,
                evidence=f"{evidence} (notice v{mailing_list.notice_version}).",
                source=consent.SIGNUP_SOURCE,
            )
        except ConsentError:
            continue
        queued += outcome != consent.UNCHANGED
    return queued
