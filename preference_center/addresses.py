"""Where mail goes: a contact's separate business address and its routing.

Adding a business address takes two emailed confirmations: the address on
file approves the change (so a forwarded manage link cannot redirect
anyone's mail), then the new address proves it is the contact's. Only then
is it used. Every change here is a consent event.
"""

from __future__ import annotations

import hashlib

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext

from . import languages, mailer, tokens, wording
from .consent import ConsentError, Via, lock_contact, record
from .extensions import db
from .models import BUSINESS, PERSONAL, Address, Contact, Subscription, normalise_email, utcnow


def address_fingerprint(email: str) -> str:
    """Binds a verification link to one address without putting it in the link."""
    return hashlib.sha256(normalise_email(email).encode()).hexdigest()[:16]


def add_business_address(contact: Contact, email: str, via: Via) -> Address:
    """Add (or replace) the contact's business address; the owner is asked to approve."""
    email = normalise_email(email)
    if "@" not in email or len(email) > 320 or " " in email:
        raise ConsentError(_("Please enter a valid email address."))
    contact = lock_contact(contact)
    if email == contact.primary_email:
        raise ConsentError(_("That is already the address we write to."))
    taken = db.session.execute(db.select(Address).filter_by(email=email)).scalar_one_or_none()
    if taken is not None and taken.contact_id != contact.id:
        raise ConsentError(_("We can't use that address here. Please choose another one."))
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
        approve_url=f"{current_app.config['PUBLIC_BASE_URL']}/verify-address/{token}",
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
        verify_url=f"{current_app.config['PUBLIC_BASE_URL']}/verify-address/{token}",
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
