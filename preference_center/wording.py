"""Plain-language sentences for the contact: why they are on a list, and its state."""

from __future__ import annotations

from datetime import date, datetime

from flask import current_app

from .consent import effective_state
from .models import EXPIRED, INVITED, PENDING, SUBSCRIBED, UNSUBSCRIBED, Subscription

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
        where = "on this page" if s.source == "preference page" else f"through {s.source}"
        sentence = f"You subscribed on {added} {where} and confirmed by email{confirmed}."
    elif s.basis == "express" and by == "you":
        sentence = f"You said yes on {added} on this page."
    elif s.basis == "express":
        sentence = f"{by} added you on {added}: you said yes through {s.source}."
    elif s.basis == "implied_purchase":
        sentence = (
            f"{by} added you on {added} because you bought from {organisation} "
            f"on {day(s.basis_date)}."
        )
    elif s.basis == "implied_inquiry":
        sentence = (
            f"{by} added you on {added} because you asked {organisation} a question "
            f"on {day(s.basis_date)}."
        )
    elif s.basis == "personal":
        sentence = f"{by} added you on {added} because you know each other personally."
    else:
        sentence = f"{by} added you on {added} from {s.source}. You get nothing until you say yes."
    return sentence + ending(subscription)


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
