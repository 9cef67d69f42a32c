"""What an ESP's feedback means for consent, whichever provider reported it.

The provider modules in ``feedback/`` turn a webhook body or an ARF report
into ``Signal``s; ``apply`` acts on each one once (by the provider's event
id, kept in ``provider_events``) and only through the rulebook's verbs, so
every change is a consent event with channel ``feedback``, the provider as
actor and the provider's event type and id in its detail:

- a spam complaint or the ESP's own unsubscribe withdraws the list the event
  names (``pc_list``), or without one every *business* list of the contact;
- a hard bounce makes the address undeliverable; soft bounces are counted and
  ``SOFT_BOUNCE_LIMIT`` of them in a row do the same; a delivery ends a run.

An unknown address changes nothing and is not told apart in any answer.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from flask import current_app
from sqlalchemy.exc import IntegrityError

from . import consent
from .addresses import identifies_contact
from .consent import Via
from .extensions import db
from .models import BUSINESS, Address, Channel, Contact, MailingList, ProviderEvent, normalise_email

COMPLAINT = "complaint"
UNSUBSCRIBE = "unsubscribe"
HARD_BOUNCE = "hard_bounce"
SOFT_BOUNCE = "soft_bounce"
DELIVERED = "delivered"
KINDS = (COMPLAINT, UNSUBSCRIBE, HARD_BOUNCE, SOFT_BOUNCE, DELIVERED)
PROVIDER_NAMES = {
    "sendgrid": "SendGrid",
    "mailgun": "Mailgun",
    "postmark": "Postmark",
    "arf": "ARF",
}


class Malformed(ValueError):
    """A body or report that is not what the provider sends."""


@dataclass(frozen=True)
class Signal:
    """One provider event that matters here, reduced to what it means."""

    provider: str
    event_id: str
    event_type: str
    kind: str
    email: str | None = None
    list_slug: str | None = None
    # A one-click token in an ARF report names the contact directly.
    contact_public_id: str | None = None


def text(value: object, limit: int = 320) -> str | None:
    """A provider's string field, or None when absent, empty, too long or odd."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    value = str(value).strip()
    if not value or len(value) > limit or "\x00" in value:
        return None
    return value


def apply(signal: Signal) -> str:
    """Act on ``signal`` in the caller's transaction: ``applied``, ``duplicate`` or ``ignored``."""
    contact, address = _find(signal)
    if signal.kind == DELIVERED and (address is None or not address.soft_bounces):
        return "ignored"  # the common case: nothing to reset, nothing to store
    if contact is None or (address is None and signal.kind not in (COMPLAINT, UNSUBSCRIBE)):
        # Remembered all the same, so a retry of an event about an unknown address
        # costs one lookup and every answer is the same.
        return "applied" if _first_time(signal) else "duplicate"
    if not _first_time(signal):
        return "duplicate"
    via = Via(channel=Channel.FEEDBACK, actor=signal.provider)
    detail = json.dumps(
        {"provider": signal.provider, "event": signal.event_type, "id": signal.event_id},
        sort_keys=True,
    )
    if signal.kind in (COMPLAINT, UNSUBSCRIBE):
        withdraw_named_or_business(contact, signal.list_slug, via, detail)
    elif signal.kind == HARD_BOUNCE:
        name = PROVIDER_NAMES.get(signal.provider, signal.provider)
        consent.mark_undeliverable(address, via, f"hard bounce reported by {name}", detail=detail)
    elif signal.kind == SOFT_BOUNCE:
        limit = current_app.config["SOFT_BOUNCE_LIMIT"]
        consent.count_soft_bounce(address, via, limit, detail=detail)
    elif signal.kind == DELIVERED:
        consent.count_delivery(address, via, detail=detail)
    return "applied"


def apply_all(signals: Iterable[Signal]) -> Counter:
    """``apply`` each signal in order; how many of each outcome."""
    return Counter(apply(signal) for signal in signals)


def withdraw_named_or_business(
    contact: Contact, list_slug: str | None, via: Via, detail: str
) -> int:
    """Withdraw the named list, or, when none (or no such list) is named, every business list."""
    named = (
        db.session.execute(db.select(MailingList).filter_by(slug=list_slug)).scalar_one_or_none()
        if list_slug
        else None
    )
    if named is not None:
        subscription = consent.find_subscription(contact, named)
        return int(subscription is not None and consent.withdraw(subscription, via, detail=detail))
    business = [s for s in contact.subscriptions if s.mailing_list.audience == BUSINESS]
    return sum(consent.withdraw(s, via, detail=detail) for s in business)


def _find(signal: Signal) -> tuple[Contact | None, Address | None]:
    if signal.email:
        found = db.session.execute(
            db.select(Contact, Address)
            .join(Address, Address.contact_id == Contact.id)
            .where(
                Address.email == normalise_email(signal.email),
                identifies_contact(),
                Contact.erased_at.is_(None),
            )
        ).one_or_none()
        if found is not None:
            return found[0], found[1]
    if signal.contact_public_id:
        contact = db.session.execute(
            db.select(Contact).filter_by(public_id=signal.contact_public_id, erased_at=None)
        ).scalar_one_or_none()
        return contact, None
    return None, None


def _first_time(signal: Signal) -> bool:
    """Remember the event; False if it was seen before (or a concurrent request has it)."""
    seen = db.session.execute(
        db.select(ProviderEvent.id).filter_by(provider=signal.provider, event_id=signal.event_id)
    ).first()
    if seen is not None:
        return False
    try:
        with db.session.begin_nested():
            db.session.add(
                ProviderEvent(
                    provider=signal.provider,
                    event_id=signal.event_id,
                    event_type=signal.event_type[:64],
                )
            )
    except IntegrityError:
        return False
    return True
