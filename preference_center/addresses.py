"""Where mail goes: a contact's separate business address and its routing.

Adding a business address takes two emailed confirmations: the address on
file approves the change (so a forwarded manage link cannot redirect
anyone's mail), then the new address proves it is the contact's. Only then
is it used. Every change here is a consent event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from sqlalchemy import or_

from . import languages, mailer, tokens, wording
from .consent import ConsentError, Via, lock_contact, record
from .extensions import db
from .models import BUSINESS, PERSONAL, Address, Contact, Subscription, normalise_email, utcnow
from .validation import InvalidAddress, email_address

_CHUNK = 500  # addresses per IN (...) query


def identifies_contact():
    """SQL: an address that says whose it is — the address on file, or a verified one.

    A business address nobody has verified belongs to nobody: every lookup by
    address (API, fresh links, the sender helpers, imports, may-send) uses this.
    """
    return or_(Address.kind == PERSONAL, Address.verified_at.is_not(None))


def owned_addresses(emails: Iterable[str]) -> dict[str, Address]:
    """The addresses among ``emails`` (normalised) that identify a contact, by address."""
    wanted = sorted({normalise_email(email) for email in emails})
    found: dict[str, Address] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        for address in db.session.execute(
            db.select(Address).where(Address.email.in_(chunk), identifies_contact())
        ).scalars():
            found[address.email] = address
    return found


def contact_by_email(email: str) -> Contact | None:
    """The (not erased) contact whose address on file or verified address is ``email``."""
    return db.session.execute(
        db.select(Contact)
        .join(Address, Address.contact_id == Contact.id)
        .where(
            Address.email == normalise_email(email),
            identifies_contact(),
            Contact.erased_at.is_(None),
        )
    ).scalar_one_or_none()


def release_unverified_claim(email: str, via: Via, *, keep: Contact | None = None) -> bool:
    """Drop another contact's unverified claim on ``email`` before it is given to its owner.

    Someone may type anyone's address as their business address; until it is
    verified that claim must not stand in the way of the address's real owner.
    The claimer's chain records the removal. Returns whether a claim was dropped.
    """
    claim = db.session.execute(
        db.select(Address).filter_by(email=normalise_email(email))
    ).scalar_one_or_none()
    if claim is None or claim.verified_at is not None or claim.kind != BUSINESS:
        return False
    if keep is not None and claim.contact_id == keep.id:
        return False
    claimer = lock_contact(claim.contact)
    for subscription in claimer.subscriptions:
        subscription.deliver_to_business = False
    claimer.addresses.remove(claim)
    db.session.flush()
    record(
        claimer,
        via,
        "business_address_removed",
        detail=f"{wording.mask_email(claim.email)}: never verified, claimed by its owner",
    )
    return True


def address_fingerprint(email: str) -> str:
    """Binds a verification link to one address without putting it in the link."""
    return hashlib.sha256(normalise_email(email).encode()).hexdigest()[:16]


def add_business_address(contact: Contact, email: str, via: Via) -> Address:
    """Add (or replace) the contact's business address; the owner is asked to approve."""
    try:
        email = email_address(email)
    except InvalidAddress as error:
        # The validator's reason is English; the contact reads the sentence in their language.
        raise ConsentError(_("Please enter a valid email address.")) from error
    contact = lock_contact(contact)
    if email == contact.primary_email:
        raise ConsentError(_("That is already the address we write to."))
    taken = db.session.execute(db.select(Address).filter_by(email=email)).scalar_one_or_none()
    if taken is not None and taken.contact_id != contact.id:
        if taken.kind != BUSINESS or taken.verified_at is not None:
            # Someone else's address on file, or verified by someone else.
            raise ConsentError(_("We can't use that address here. Please choose another one."))
        # Another contact's unverified claim: it belongs to nobody yet.
        release_unverified_claim(email, via, keep=contact)
    current = contact.business_address
    if current is not None and current.email == email:
        address = current
    else:
        if current is not None:
            remove_business_address(contact, via)
        address = Address(email=email, kind=BUSINESS)
        contact.addresses.append(address)
        db.session.flush()
        record(contact, via, "business_address_added", detail=wording.mask_email(email))
    queue_owner_approval(contact, address)
    return address


def queue_owner_approval(contact: Contact, address: Address) -> None:
    """Ask the address on file to approve the change: a forwarded link is not enough."""
    token = tokens.sign(
        tokens.VERIFY_ADDRESS, contact, a=address_fingerprint(address.email), s="owner"
    )
    mailer.queue(
        "approve_address",
        contact.primary_email,
        lazy_gettext(
            "Send business messages to %(address)s?", address=wording.mask_email(address.email)
        ),
        "approve_address",
        contact=contact,
        masked=wording.mask_email(address.email),
        approve_url=tokens.public_url("business_address.verify_page", token=token),
    )


def approve_business_address(contact: Contact, fingerprint: str, via: Via) -> bool:
    """The owner approved the change from the address on file: now prove the new one."""
    contact = lock_contact(contact)
    address = _pending_address(contact, fingerprint)
    if address.verified_at is not None:
        return False
    record(contact, via, "business_address_approved", detail=wording.mask_email(address.email))
    token = tokens.sign(tokens.VERIFY_ADDRESS, contact, a=fingerprint, s="new")
    mailer.queue(
        "verify_address",
        address.email,
        lazy_gettext(
            "Please confirm your business address for %(organisation)s",
            organisation=current_app.config["ORGANISATION_NAME"],
        ),
        "verify_address",
        language=languages.of_contact(contact),
        # No manage link in this mail: the address is not verified yet, and
        # whoever reads it must not get control of the contact's preferences.
        verify_url=tokens.public_url("business_address.verify_page", token=token),
    )
    return True


def _pending_address(contact: Contact, fingerprint: str) -> Address:
    address = contact.business_address
    if address is None or address_fingerprint(address.email) != fingerprint:
        raise tokens.InvalidLink
    return address


def verify_business_address(contact: Contact, fingerprint: str, via: Via) -> bool:
    """The contact pressed the button behind the emailed link: use the address.

    Verification also routes business mail there, which is why it was added.
    """
    contact = lock_contact(contact)
    address = _pending_address(contact, fingerprint)
    if address.verified_at is not None:
        return False
    address.verified_at = utcnow()
    record(contact, via, "business_address_verified", detail=wording.mask_email(address.email))
    route_business_mail(contact, BUSINESS, via)
    return True


def wants_business_address(contact: Contact, to: str) -> bool:
    """Whether ``to`` names the business address, which must be verified to be used."""
    if to not in (BUSINESS, PERSONAL):
        raise ConsentError(_("Choose the business or the personal address."))
    address = contact.business_address
    if to == BUSINESS and (address is None or address.verified_at is None):
        raise ConsentError(_("Verify your business address first."))
    return to == BUSINESS


def route_business_mail(contact: Contact, to: str, via: Via) -> bool:
    """Send business lists to the verified business address, or back to the personal one."""
    contact = lock_contact(contact)
    wanted = wants_business_address(contact, to)
    if contact.business_mail_to_business_address == wanted:
        return False
    contact.business_mail_to_business_address = wanted
    record(
        contact,
        via,
        "route_business_mail",
        from_state=PERSONAL if wanted else BUSINESS,
        to_state=to,
    )
    return True


def remove_business_address(contact: Contact, via: Via) -> bool:
    """Forget the business address; everything goes to the personal address again."""
    contact = lock_contact(contact)
    address = contact.business_address
    if address is None:
        return False
    route_business_mail(contact, PERSONAL, via)
    for subscription in contact.subscriptions:
        subscription.deliver_to_business = False
    masked = wording.mask_email(address.email)
    contact.addresses.remove(address)
    record(contact, via, "business_address_removed", detail=masked)
    return True


def route_list(subscription: Subscription, to: str, via: Via) -> bool:
    """A personal list delivered to the business address, only if the contact asks."""
    contact = lock_contact(subscription.contact)
    wanted = wants_business_address(contact, to)
    if subscription.deliver_to_business == wanted:
        return False
    subscription.deliver_to_business = wanted
    record(
        contact,
        via,
        "route_list",
        mailing_list=subscription.mailing_list,
        from_state=subscription.state,
        to_state=subscription.state,
        detail=f"delivered to the {to} address",
    )
    return True
