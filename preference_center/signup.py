"""The hosted signup form's one job: ask for a confirmation, whoever typed the address.

The form is public, so anyone can type anyone's address: nothing is sendable
until the mailbox confirms (double opt-in), and nothing here tells the caller
whether the address was known.
"""

from __future__ import annotations

from flask_babel import gettext as _

from . import consent, languages, suppression, validation
from .addresses import owned_addresses, release_unverified_claim
from .consent import ConsentError, Via
from .extensions import db
from .models import PERSONAL, Address, Contact, MailingList


def wording(mailing_lists: list[MailingList]) -> str:
    """The sentence the form shows above its button, in the page's language; the
    evidence quotes it, so it records the words shown."""
    names = languages.join([f'"{languages.list_name(m)}"' for m in mailing_lists])
    return _(
        "Send me %(lists)s by email. I will confirm by the link you email me, "
        "and I can unsubscribe at any time.",
        lists=names,
    )


def usable_email(email: str) -> str | None:
    """The normalised address if it is one we can write to, else ``None``."""
    try:
        return validation.email_address(email)
    except validation.InvalidAddress:
        return None


def _usable_name(name: str | None) -> str | None:
    try:
        return validation.header_safe_text(name or "")[:200] or None
    except validation.UnsafeText:
        return None  # a name that would break mail headers is left out, not refused


def _contact_for(email: str, name: str | None, via: Via) -> Contact | None:
    """The contact behind ``email``, created if unknown; ``None`` if erased."""
    address = owned_addresses([email]).get(email)
    if address is not None:
        contact = address.contact
        # A stranger typing a known address must not rename its contact.
        return None if contact.erased_at is not None else contact
    # Someone else's unverified claim on the address gives way to its owner.
    release_unverified_claim(email, via)
    contact = Contact(name=_usable_name(name))
    contact.addresses.append(Address(email=email, kind=PERSONAL))
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
    contact = _contact_for(email, name, via)
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
