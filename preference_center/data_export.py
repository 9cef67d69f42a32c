"""Everything held about one contact, as one JSON document (GDPR Art. 15 and 20).

The document is described by ``schemas/data-export.schema.json`` (its
``schema_version`` names the version). It holds the contact, the addresses,
every subscription with its provenance, every consent event with its hashes
(so the contact can recompute the chain, see ``ledger``), and one receipt per
subscription in the shape of the Kantara Consent Receipt v1.1.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from email.utils import parseaddr
from functools import cache
from pathlib import Path
from typing import Any

from flask import current_app
from flask_babel import gettext as _

from . import consent, jurisdictions, languages, ledger
from .extensions import db
from .models import (
    BUSINESS,
    EXPIRED,
    INVITED,
    PENDING,
    SUBSCRIBED,
    UNSUBSCRIBED,
    ConsentEvent,
    Contact,
    Subscription,
    utcnow,
)

SCHEMA_VERSION = "1.0"
SCHEMA_PATH = Path(__file__).parent / "schemas" / "data-export.schema.json"
KANTARA_VERSION = "KI-CR-v1.1.0"

# Kantara v1.1 consent types: a yes the contact gave, or consent the law implies.
CONSENT_TYPES = {
    "express": "EXPLICIT",
    "double_opt_in": "EXPLICIT",
    "implied_purchase": "IMPLIED",
    "implied_inquiry": "IMPLIED",
    "personal": "N/A",
    "none": "N/A",
}
# Kantara purpose categories (v1.1 appendix): business lists market, personal
# lists are the contact a person asked for.
PURPOSE_CATEGORIES = {BUSINESS: "6 - Marketing"}
PERSONAL_PURPOSE = "4 - Contact Requested"
# The W3C DPV consent status of each state (a list withdrawn by someone other
# than the contact is revoked, not withdrawn).
DPV_STATUS = {
    INVITED: "dpv:ConsentRequested",
    PENDING: "dpv:ConsentRequested",
    SUBSCRIBED: "dpv:ConsentGiven",
    UNSUBSCRIBED: "dpv:ConsentWithdrawn",
    EXPIRED: "dpv:ConsentExpired",
}
# Event actions after which the subscription rests on the contact's or sender's word.
GIVING_ACTIONS = frozenset({"subscribe", "invite", "opt_in", "confirm", "affirm"})


@cache
def schema() -> dict:
    """The JSON Schema of the document (draft 2020-12)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _time(moment: datetime | None) -> str | None:
    return ledger.format_time(moment) if moment else None


def _day(day: date | None) -> str | None:
    return day.isoformat() if day else None


def events_of(contact: Contact) -> list[ConsentEvent]:
    return list(
        db.session.execute(
            db.select(ConsentEvent).filter_by(contact_id=contact.id).order_by(ConsentEvent.id)
        ).scalars()
    )


def build(contact: Contact) -> dict[str, Any]:
    """The whole document for ``contact``, ready for ``json.dumps``."""
    events = events_of(contact)
    now = utcnow()
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": _time(now),
        "controller": controller(),
        "contact": {
            "id": contact.public_id,
            "name": contact.name,
            "created_at": _time(contact.created_at),
            "business_contact": contact.business_contact,
            "business_mail_to_business_address": contact.business_mail_to_business_address,
            "receipts_enabled": contact.receipts_enabled,
            "language": contact.language,
            "erased_at": _time(contact.erased_at),
            "jurisdiction": contact.jurisdiction,
            "jurisdiction_in_effect": jurisdictions.effective(contact.jurisdiction),
        },
        "addresses": [
            {
                "email": address.email,
                "kind": address.kind,
                "subscriber_type": address.subscriber_type,
                "verified_at": _time(address.verified_at),
                "created_at": _time(address.created_at),
            }
            for address in contact.addresses
        ],
        "subscriptions": [_subscription(s, now) for s in contact.subscriptions],
        "consent_log": {
            "hashed_fields": list(ledger.HASHED_FIELDS),
            "optional_hashed_fields": list(ledger.OPTIONAL_HASHED_FIELDS),
            "personal_fields": list(ledger.PERSONAL_FIELDS),
            "chain_head": contact.chain_head,
            "events": [_event(event, contact) for event in events],
        },
        "receipts": [_receipt(s, contact, events) for s in contact.subscriptions],
    }


def controller() -> dict[str, Any]:
    config = current_app.config
    return {
        "name": config["ORGANISATION_NAME"],
        "contact": config["SENDER_NAME"],
        "email": parseaddr(config["MAIL_DEFAULT_SENDER"])[1],
        "url": config["PUBLIC_BASE_URL"],
    }


def _subscription(subscription: Subscription, now: datetime) -> dict[str, Any]:
    mailing_list = subscription.mailing_list
    return {
        "list": {
            "slug": mailing_list.slug,
            "name": mailing_list.name,
            "description": mailing_list.description,
            "frequency": mailing_list.frequency,
            "audience": mailing_list.audience,
            "notice_version": mailing_list.notice_version,
        },
        "state": consent.effective_state(subscription, now),
        "provenance": {
            "source": subscription.source,
            "added_by": subscription.added_by,
            "added_at": _time(subscription.added_at),
            "basis": subscription.basis,
            "basis_date": _day(subscription.basis_date),
            "relationship_ended_on": _day(subscription.relationship_ended_on),
            "evidence": subscription.evidence,
        },
        "expires_at": _time(subscription.expires_at),
        "confirmed_at": _time(subscription.confirmed_at),
        "invited_at": _time(subscription.invited_at),
        "disputed_at": _time(subscription.disputed_at),
        "dispute_text": subscription.dispute_text,
        "deliver_to_business": subscription.deliver_to_business,
        "updated_at": _time(subscription.updated_at),
    }


def _event(event: ConsentEvent, contact: Contact) -> dict[str, Any]:
    """One event under the names the hash uses, plus its id, salt and hashes."""
    slug = event.mailing_list.slug if event.mailing_list else None
    return {
        "event_id": event.id,
        **ledger.hashed_fields(event, contact.public_id, slug),
        **{name: getattr(event, name) for name in ledger.PERSONAL_FIELDS},
        "personal_salt": event.personal_salt,
        "hash": event.hash,
    }


def _receipt(
    subscription: Subscription, contact: Contact, events: list[ConsentEvent]
) -> dict[str, Any]:
    """A Kantara Consent Receipt v1.1 for one list, resting on the event that gave it."""
    config = current_app.config
    mailing_list = subscription.mailing_list
    state = consent.effective_state(subscription)
    own = [e for e in events if e.list_id == mailing_list.id]
    given = next((e for e in reversed(own) if e.action in GIVING_ACTIONS), None)
    last = own[-1] if own else None
    moment = given.occurred_at if given else subscription.added_at
    status = DPV_STATUS[state]
    if state == UNSUBSCRIBED and last is not None and last.actor != "contact":
        status = "dpv:ConsentRevoked"
    anchor = given.hash if given else f"{contact.public_id}/{mailing_list.slug}"
    controller_ = controller()
    return {
        "version": KANTARA_VERSION,
        # The jurisdiction of the consent: the event's, else the contact's, else the operator's.
        "jurisdiction": (given.jurisdiction if given else None)
        or jurisdictions.effective(contact.jurisdiction)
        or config.get("JURISDICTION")
        or "unknown",
        "consentTimestamp": int(moment.replace(tzinfo=UTC).timestamp()),
        "collectionMethod": f"{subscription.source} ({given.channel if given else 'unknown'})",
        # The same consent always gets the same receipt id.
        "consentReceiptID": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{controller_['url']}#{anchor}")),
        # The language the readable fields below are written in.
        "language": languages.current(),
        "piiPrincipalId": contact.public_id,
        "piiControllers": [
            {
                "piiController": controller_["name"],
                "contact": controller_["contact"],
                "address": {"streetAddress": config.get("ORGANISATION_ADDRESS") or ""},
                "email": controller_["email"],
                "phone": config.get("ORGANISATION_PHONE") or "",
                "piiControllerUrl": controller_["url"],
            }
        ],
        "policyUrl": config.get("PRIVACY_POLICY_URL") or controller_["url"],
        "services": [
            {
                "service": languages.list_name(mailing_list),
                "purposes": [
                    {
                        "purpose": languages.list_text(mailing_list, "description")
                        or languages.list_name(mailing_list),
                        "consentType": CONSENT_TYPES.get(subscription.basis, "N/A"),
                        "purposeCategory": [
                            PURPOSE_CATEGORIES.get(mailing_list.audience, PERSONAL_PURPOSE)
                        ],
                        "piiCategory": ["2 - Contact"],
                        "primaryPurpose": True,
                        "termination": termination(subscription),
                        "thirdPartyDisclosure": False,
                    }
                ],
            }
        ],
        "sensitive": False,
        "spiCat": [],
        # Beyond Kantara v1.1 (which has no state, basis or log link).
        "list": mailing_list.slug,
        "state": state,
        "dpvStatus": status,
        "basis": subscription.basis,
        "noticeVersion": given.notice_version if given else mailing_list.notice_version,
        "eventHash": given.hash if given else None,
    }


def termination(subscription: Subscription) -> str:
    """How and when this consent ends, in the contact's terms."""
    how = _(
        "Withdraw at any time: switch the list off on your preferences page, or use the "
        "one-click unsubscribe link in any email."
    )
    if subscription.expires_at is not None:
        ends = _(
            "Ends on %(date)s unless you say yes.", date=languages.day(subscription.expires_at)
        )
        return f"{ends} {how}"
    return how


def to_json(contact: Contact) -> str:
    return json.dumps(build(contact), ensure_ascii=False, indent=2) + "\n"
