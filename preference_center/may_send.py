"""One answer to "may I send list X to this address right now?"."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime

from sqlalchemy import false

from .consent import effective_state
from .extensions import db
from .languages import default as default_language
from .ledger import format_time
from .models import (
    BUSINESS,
    BUSINESS_DECLINED,
    EXPIRED,
    INVITED,
    PENDING,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Address,
    Contact,
    MailingList,
    Subscription,
    normalise_email,
    utcnow,
)

_NOT_SENDABLE_REASON = {
    INVITED: "The contact was invited and has not said yes.",
    PENDING: "The contact said yes but has not confirmed by email yet.",
    UNSUBSCRIBED: "The contact withdrew from this list.",
    EXPIRED: "Implied consent for this list has ended.",
}


@dataclass(frozen=True)
class Answer:
    allowed: bool
    status: str
    basis: str | None
    reason: str
    deliver_to: str | None
    expires_at: str | None
    # The contact's language (BCP 47), so the sender can write to them in it.
    language: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def deliver_to(
    contact: Contact, mailing_list: MailingList, subscription: Subscription | None
) -> str | None:
    """The address this list goes to for this contact.

    Business lists go to a verified business address when the contact routed
    them there; personal lists only when the contact chose so for that list.
    """
    business = contact.business_address
    if business is not None and business.verified_at is not None:
        if mailing_list.audience == BUSINESS and contact.business_mail_to_business_address:
            return business.email
        if subscription is not None and subscription.deliver_to_business:
            return business.email
    return contact.primary_email


def check(email: str, list_slug: str, now: datetime | None = None) -> Answer:
    """Decide whether ``list_slug`` may be sent to ``email`` now, and why."""
    now = now or utcnow()
    # Two queries whatever the answer (this runs before every send): the address
    # with its contact, then the list with this contact's subscription to it.
    found = db.session.execute(
        db.select(Address, Contact)
        .join(Contact, Contact.id == Address.contact_id)
        .where(Address.email == normalise_email(email))
    ).one_or_none()
    address, contact = found if found is not None else (None, None)
    pair = db.session.execute(
        db.select(MailingList, Subscription)
        .outerjoin(
            Subscription,
            (Subscription.list_id == MailingList.id)
            & (Subscription.contact_id == contact.id if contact is not None else false()),
        )
        .where(MailingList.slug == list_slug)
    ).one_or_none()
    if pair is None:
        return Answer(False, "unknown_list", None, f"There is no list {list_slug!r}.", None, None)
    mailing_list, subscription = pair
    if address is None or contact.erased_at is not None:
        return Answer(False, "unknown", None, "This address is not a known contact.", None, None)
    answer = _decide(contact, address, mailing_list, subscription, now)
    return replace(answer, language=contact.language or default_language())


def _decide(
    contact: Contact,
    address: Address,
    mailing_list: MailingList,
    subscription: Subscription | None,
    now: datetime,
) -> Answer:
    target = deliver_to(contact, mailing_list, subscription)
    if subscription is None:
        reason = "The contact is not on this list."
        return Answer(False, "not_subscribed", None, reason, target, None)
    state = effective_state(subscription, now)
    expires = format_time(subscription.expires_at) if subscription.expires_at else None
    basis = subscription.basis
    if state != SUBSCRIBED:
        return Answer(False, state, basis, _NOT_SENDABLE_REASON[state], target, expires)
    if mailing_list.audience == BUSINESS and contact.business_contact == BUSINESS_DECLINED:
        reason = "The contact declined all business messages."
        return Answer(False, "business_declined", basis, reason, target, expires)
    if target != address.email:
        reason = f"This contact asked for this list at another address: send to {target}."
        return Answer(False, "wrong_address", basis, reason, target, expires)
    reason = "Subscribed" + (f" until {expires}." if expires else ".")
    return Answer(True, SUBSCRIBED, basis, reason, target, expires)
