"""Plain-language sentences for the contact: why they are on a list, and its state."""

from __future__ import annotations

import re
from datetime import date, datetime

from flask import current_app
from sqlalchemy.orm import joinedload

from .consent import effective_state
from .extensions import db
from .models import (
    EXPIRED,
    INVITED,
    PENDING,
    SUBSCRIBED,
    UNSUBSCRIBED,
    ConsentEvent,
    Contact,
    Subscription,
)

STATE_LABELS = {
    SUBSCRIBED: "On",
    PENDING: "Waiting for your confirmation",
    INVITED: "Invited — nothing is sent unless you say yes",
    UNSUBSCRIBED: "Off",
    EXPIRED: "Ended — nothing is sent unless you say yes",
}

NETWORKING_SOURCE = "networking import"


def day(moment: date | datetime | None) -> str:
    """15 Feb 2011 (no leading zero, English month abbreviation)."""
    if moment is None:
        return "an unknown date"
    return f"{moment.day} {moment:%b %Y}"


def why(subscription: Subscription) -> str:
    """One sentence built from the subscription's provenance."""
    s = subscription
    organisation = current_app.config["ORGANISATION_NAME"]
    added = day(s.added_at)
    by = s.added_by
    if s.source == NETWORKING_SOURCE:
        sentence = (
            f"{by} added you on {added} from a LinkedIn connections export. "
            "A connection is not consent, so you get nothing until you say yes."
        )
    elif s.basis == "double_opt_in":
        confirmed = f" on {day(s.confirmed_at)}" if s.confirmed_at else ""
        where = "on this page" if s.source == "preference page" else f"on {s.source}"
        if s.invited_at is not None and by != "you":
            # An invitation answered "yes" from the mailbox it reached.
            return (
                f"{by} invited you on {added}; you said yes from the invitation email"
                f"{confirmed}." + ending(subscription)
            )
        sentence = f"You subscribed on {added} {where} and confirmed by email{confirmed}."
    elif s.basis == "express" and by == "you":
        sentence = f"You said yes on {added} on this page."
    elif s.basis == "express":
        sentence = f"{by} added you on {added}: you said yes through {s.source}."
    elif s.basis == "implied_purchase" and not s.relationship_ended_on:
        sentence = (
            f"{by} added you on {added} because you bought from {organisation} "
            f"on {day(s.basis_date)}."
        )
    elif s.basis == "implied_inquiry":
        sentence = (
            f"{by} added you on {added} because you asked {organisation} a question "
            f"on {day(s.basis_date)}."
        )
    elif s.basis == "implied_nonbusiness":
        since = (
            f"your membership or support, which ended on {day(s.relationship_ended_on)}"
            if s.relationship_ended_on
            else f"your donation, volunteering or membership on {day(s.basis_date)}"
        )
        sentence = f"{by} added you on {added} because of {since}."
    elif s.basis == "implied_purchase" and s.relationship_ended_on:
        sentence = (
            f"{by} added you on {added} because you were a customer of {organisation} "
            f"until {day(s.relationship_ended_on)}."
        )
    elif s.basis == "conspicuous_publication":
        where = published_at(s.evidence)
        sentence = (
            f"{by} added you on {added} because your address is published on a public "
            f"business profile at {where}, where we found it on {day(s.basis_date)}. "
            "We send only what concerns your work."
        )
    elif s.basis == "soft_opt_in":
        sentence = (
            f"{by} added you on {added} because you bought from or talked business with "
            f"{organisation} on {day(s.basis_date)} ({s.evidence}). We may send you news of "
            "our own similar products unless you say no; saying no is one click: switch "
            "this list off."
        )
    elif s.basis == "personal":
        sentence = f"{by} added you on {added} because you know each other personally."
    else:
        sentence = f"{by} added you on {added} from {s.source}. You get nothing until you say yes."
    return sentence + ending(subscription)


def published_at(evidence: str) -> str:
    """The URL in a conspicuous-publication basis's evidence (where the address was found)."""
    match = re.search(r"https?://[^\s<>\"]+", evidence or "", re.IGNORECASE)
    return match.group(0).rstrip(".,;)") if match else "an address we did not record"


def ending(subscription: Subscription) -> str:
    """What happens next for implied consent, in the contact's terms."""
    # Expired by the clock or by expire-consent: the contact reads the same words.
    if subscription.expires_at is None or subscription.state not in (SUBSCRIBED, EXPIRED):
        return ""
    if effective_state(subscription) == EXPIRED:
        return f" This ended on {day(subscription.expires_at)}."
    return f" This ends on {day(subscription.expires_at)} unless you say yes."


def mask_email(email: str | None) -> str:
    """s***@example.com: enough to recognise, not enough to harvest."""
    if not email or "@" not in email:
        return ""
    local, domain = email.rsplit("@", 1)
    return f"{local[:1]}***@{domain}"


CHANNELS = {
    "preference_page": "on this page",
    "one_click": "with the unsubscribe button of your mail app",
    "email_confirmation": "from the link we emailed you",
    "signup_form": "on the signup form",
    "api": "by the sender's systems",
    "admin": "by the sender's staff",
    "import": "by an import",
    "system": "automatically",
}

ACTIONS = {
    "opt_in": "You said yes to {list}; it starts once you confirm by email",
    "confirm": "You confirmed {list} by email",
    "affirm": "You confirmed that you want to keep {list}",
    "withdraw": "{list} was stopped",
    "invite": "You were invited to {list}",
    "subscribe": "You were added to {list}",
    "expire": "{list} ended: the implied consent ran out",
    "dispute": "You said you never agreed to {list}, and it was stopped",
    "decline_business": "You said no to business messages",
    "allow_business": "You allowed business messages again",
    "business_address_added": "You asked to use {detail} for business messages",
    "business_address_approved": "You approved {detail} for business messages",
    "business_address_verified": "You confirmed the business address {detail}",
    "route_business_mail": "Business messages now go to your {to_state} address",
    "business_address_removed": "You removed the business address {detail}",
    "route_list": "{list} is now {detail}",
    "links_reset": "You reset your links, so older links stopped working",
    "receipts_on": "You turned emailed receipts on",
    "receipts_off": "You turned emailed receipts off",
    "accept_invitation": "You said yes to {list} from the invitation we emailed you",
    "pause": "You paused {list} {detail}",
    "resume": "{list} resumed",
    "pause_business": "You paused all business messages {detail}",
    "resume_business": "Business messages resumed",
    "cadence": "You chose how often {list} arrives: {detail}",
}


def actor_name(actor: str) -> str:
    if actor == "contact":
        return "you"
    if actor.startswith("admin:"):
        return "the sender's staff"
    if actor.startswith("api:"):
        return "the sender's systems"
    return actor


def describe(event: ConsentEvent) -> str:
    """One line of the contact's history, in plain language."""
    name = event.mailing_list.name if event.mailing_list else "a list"
    template = ACTIONS.get(event.action, event.action.replace("_", " ").capitalize())
    what = template.format(list=name, detail=event.detail or "", to_state=event.to_state or "")
    how = CHANNELS.get(event.channel, event.channel)
    who = actor_name(event.actor)
    by = "" if who == "you" or event.channel == "system" else f", by {who}"
    return f"{day(event.occurred_at)}: {what} ({how}{by})."


def history(contact: Contact, limit: int = 200) -> list[str]:
    """The contact's consent events, newest first, as sentences."""
    events = db.session.execute(
        db.select(ConsentEvent)
        .options(joinedload(ConsentEvent.mailing_list))
        .filter_by(contact_id=contact.id)
        .order_by(ConsentEvent.id.desc())
        .limit(limit)
    ).scalars()
    return [describe(event) for event in events]
