"""One answer to "may I send list X to this address right now?"."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime

from sqlalchemy import ColumnElement, and_, false, func, or_
from sqlalchemy.orm import aliased, joinedload, lazyload

from . import jurisdictions
from .addresses import identifies_contact
from .consent import (
    cadence_of,
    declines_business_mail,
    effective_state,
    paused_until,
    send_refusal_rule,
)
from .extensions import db
from .languages import default as default_language
from .ledger import format_time
from .models import (
    BUSINESS,
    EXPIRED,
    INVITED,
    PENDING,
    PERSONAL,
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


UNDELIVERABLE = "undeliverable"


@dataclass(frozen=True)
class Answer:
    allowed: bool
    status: str
    basis: str | None
    reason: str
    deliver_to: str | None
    expires_at: str | None
    # ISO 3166-1 alpha-2 (the contact's, else DEFAULT_JURISDICTION); None when unknown.
    jurisdiction: str | None = None
    # Where they apply: the end of a pause, the cadence the contact receives.
    paused_until: str | None = None
    cadence: str | None = None
    # The contact's language (BCP 47), so the sender can write to them in it.
    language: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def undeliverable_address(contact: Contact, email: str | None) -> Address | None:
    """The contact's address ``email`` if the ESP reported it undeliverable."""
    address = next((a for a in contact.addresses if a.email == email), None)
    return address if address is not None and address.undeliverable_since is not None else None


# --- the same rules as SQL, for the whole audience of a list at once -----------
# Each clause mirrors the per-address rule above it in ``check`` / ``deliver_to``;
# tests/test_audience.py holds them equal on every state.


def first_business_address_id_sql() -> ColumnElement[int]:
    """``contact.business_address`` as SQL: the id of the row contact's first business address."""
    business = aliased(Address)
    return (
        db.select(func.min(business.id))
        .where(business.contact_id == Contact.id, business.kind == BUSINESS)
        .scalar_subquery()
    )


def primary_address_id_sql() -> ColumnElement[int]:
    """``contact.primary_email`` as SQL: the first personal address, else the first of any kind."""
    personal, any_kind = aliased(Address), aliased(Address)
    personal_id = (
        db.select(func.min(personal.id))
        .where(personal.contact_id == Contact.id, personal.kind == PERSONAL)
        .scalar_subquery()
    )
    any_id = (
        db.select(func.min(any_kind.id)).where(any_kind.contact_id == Contact.id).scalar_subquery()
    )
    return func.coalesce(personal_id, any_id)


def delivers_to_business_sql(mailing_list: MailingList, business) -> ColumnElement[bool]:
    """``deliver_to`` picks the business address (``business``, joined as the first one):

    it is verified, and business mail is routed there or this list asked for it.
    """
    routed = (
        Contact.business_mail_to_business_address if mailing_list.audience == BUSINESS else false()
    )
    return and_(business.verified_at.is_not(None), or_(routed, Subscription.deliver_to_business))


def check(email: str, list_slug: str, now: datetime | None = None) -> Answer:
    """Decide whether ``list_slug`` may be sent to ``email`` now, and why."""
    now = now or utcnow()
    # Two queries whatever the answer (this runs before every send): the address
    # with its contact and all the contact's addresses (where the list goes, which
    # bounced), then the list with this contact's subscription to it. The list's
    # wording is not needed for an answer, so it is not loaded.
    found = (
        db.session.execute(
            db.select(Address, Contact)
            .join(Contact, Contact.id == Address.contact_id)
            .options(joinedload(Contact.addresses))
            .where(Address.email == normalise_email(email), identifies_contact())
        )
        .unique()
        .one_or_none()
    )
    address, contact = found if found is not None else (None, None)
    pair = db.session.execute(
        db.select(MailingList, Subscription)
        .outerjoin(
            Subscription,
            (Subscription.list_id == MailingList.id)
            & (Subscription.contact_id == contact.id if contact is not None else false()),
        )
        .options(lazyload(MailingList.translations))
        .where(MailingList.slug == list_slug)
    ).one_or_none()
    default = jurisdictions.default()
    if pair is None:
        reason = f"There is no list {list_slug!r}."
        return Answer(False, "unknown_list", None, reason, None, None, default)
    mailing_list, subscription = pair
    if address is None or contact.erased_at is not None:
        # Unknown and erased read the same, so the jurisdiction is the default for both.
        reason = "This address is not a known contact."
        return Answer(False, "unknown", None, reason, None, None, default)
    answer = _decide(contact, address, mailing_list, subscription, now)
    return replace(answer, language=contact.language or default_language())


def _decide(
    contact: Contact,
    address: Address,
    mailing_list: MailingList,
    subscription: Subscription | None,
    now: datetime,
) -> Answer:
    """The answer for a known contact, before their language is added."""
    where = jurisdictions.effective(contact.jurisdiction)
    rule = send_refusal_rule(where)
    target = contact.deliver_to(mailing_list, subscription)
    if subscription is None:
        reason = f"{rule} The contact is not on this list."
        return Answer(False, "not_subscribed", None, reason, target, None, where)
    state = effective_state(subscription, now)
    expires = format_time(subscription.expires_at) if subscription.expires_at else None
    basis = subscription.basis
    if state != SUBSCRIBED:
        reason = f"{rule} {_NOT_SENDABLE_REASON[state]}"
        return Answer(False, state, basis, reason, target, expires, where)
    if declines_business_mail(contact, mailing_list):
        reason = f"{rule} The contact declined all business messages."
        return Answer(False, "business_declined", basis, reason, target, expires, where)
    bounced = undeliverable_address(contact, target)
    if bounced is not None:
        reason = (
            f"Mail to {target} bounced ({bounced.undeliverable_reason}) on "
            f"{bounced.undeliverable_since:%Y-%m-%d}; nothing may go there until the "
            "contact confirms from it again."
        )
        return Answer(False, UNDELIVERABLE, basis, reason, target, expires, where)
    if target != address.email:
        reason = f"This contact asked for this list at another address: send to {target}."
        return Answer(False, "wrong_address", basis, reason, target, expires, where)
    cadence = cadence_of(subscription)
    paused = paused_until(subscription, now)
    if paused is not None:
        until = format_time(paused)
        reason = f"The contact paused this list until {until}."
        return Answer(
            False,
            "paused",
            basis,
            reason,
            target,
            expires,
            where,
            paused_until=until,
            cadence=cadence,
        )
    reason = "Subscribed" + (f" until {expires}." if expires else ".")
    return Answer(True, SUBSCRIBED, basis, reason, target, expires, where, cadence=cadence)
