"""Plain-language sentences for the contact: why they are on a list, and its state."""

from __future__ import annotations

import re
from datetime import date, datetime

from flask import current_app
from flask_babel import gettext as _

from . import languages
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


def state_label(state: str | None) -> str:
    """What a list's state means to the contact, in the current language."""
    labels = {
        SUBSCRIBED: _("On"),
        PENDING: _("Waiting for your confirmation"),
        INVITED: _("Invited — nothing is sent unless you say yes"),
        UNSUBSCRIBED: _("Off"),
        EXPIRED: _("Ended — nothing is sent unless you say yes"),
    }
    return labels.get(state, _("Off — you are not on this list"))


NETWORKING_SOURCE = "networking import"


def day(moment: date | datetime | None) -> str:
    """15 Feb 2011, 15 févr. 2011: the date as the current language writes it."""
    if moment is None:
        return _("an unknown date")
    return languages.day(moment)


def why(subscription: Subscription) -> str:
    """One sentence built from the subscription's provenance."""
    s = subscription
    words = {
        "by": s.added_by,
        "added": day(s.added_at),
        "organisation": current_app.config["ORGANISATION_NAME"],
        "source": s.source,
        "date": day(s.basis_date),
        "confirmed": day(s.confirmed_at),
        "ended": day(s.relationship_ended_on),
    }
    if s.source == NETWORKING_SOURCE:
        sentence = _(
            "%(by)s added you on %(added)s from a LinkedIn connections export. "
            "A connection is not consent, so you get nothing until you say yes.",
            **words,
        )
    elif s.basis == "double_opt_in":
        if s.invited_at is not None and s.added_by != "you":
            # An invitation answered "yes" from the mailbox it reached.
            if s.confirmed_at:
                sentence = _(
                    "%(by)s invited you on %(added)s; you said yes from the invitation email "
                    "on %(confirmed)s.",
                    **words,
                )
            else:
                sentence = _(
                    "%(by)s invited you on %(added)s; you said yes from the invitation email.",
                    **words,
                )
            return sentence + ending(subscription)
        here = s.source == "preference page"
        if s.confirmed_at and here:
            sentence = _(
                "You subscribed on %(added)s on this page and confirmed by email on %(confirmed)s.",
                **words,
            )
        elif s.confirmed_at:
            sentence = _(
                "You subscribed on %(added)s on %(source)s and confirmed by email on "
                "%(confirmed)s.",
                **words,
            )
        elif here:
            sentence = _(
                "You subscribed on %(added)s on this page and confirmed by email.", **words
            )
        else:
            sentence = _(
                "You subscribed on %(added)s on %(source)s and confirmed by email.", **words
            )
    elif s.basis == "express" and s.added_by == "you":
        sentence = _("You said yes on %(added)s on this page.", **words)
    elif s.basis == "express":
        sentence = _("%(by)s added you on %(added)s: you said yes through %(source)s.", **words)
    elif s.basis == "implied_purchase" and not s.relationship_ended_on:
        sentence = _(
            "%(by)s added you on %(added)s because you bought from %(organisation)s on %(date)s.",
            **words,
        )
    elif s.basis == "implied_inquiry":
        sentence = _(
            "%(by)s added you on %(added)s because you asked %(organisation)s a question "
            "on %(date)s.",
            **words,
        )
    elif s.basis == "implied_nonbusiness" and s.relationship_ended_on:
        sentence = _(
            "%(by)s added you on %(added)s because of your membership or support, "
            "which ended on %(ended)s.",
            **words,
        )
    elif s.basis == "implied_nonbusiness":
        sentence = _(
            "%(by)s added you on %(added)s because of your donation, volunteering or "
            "membership on %(date)s.",
            **words,
        )
    elif s.basis == "implied_purchase":
        sentence = _(
            "%(by)s added you on %(added)s because you were a customer of %(organisation)s "
            "until %(ended)s.",
            **words,
        )
    elif s.basis == "conspicuous_publication":
        sentence = _(
            "%(by)s added you on %(added)s because your address is published on a public "
            "business profile at %(where)s, where we found it on %(date)s. "
            "We send only what concerns your work.",
            where=published_at(s.evidence),
            **words,
        )
    elif s.basis == "soft_opt_in":
        sentence = _(
            "%(by)s added you on %(added)s because you bought from or talked business with "
            "%(organisation)s on %(date)s (%(evidence)s). We may send you news of our own "
            "similar products unless you say no; saying no is one click: switch this list off.",
            evidence=s.evidence,
            **words,
        )
    elif s.basis == "personal":
        sentence = _(
            "%(by)s added you on %(added)s because you know each other personally.", **words
        )
    else:
        sentence = _(
            "%(by)s added you on %(added)s from %(source)s. You get nothing until you say yes.",
            **words,
        )
    return sentence + ending(subscription)


def published_at(evidence: str | None) -> str:
    """The URL in a conspicuous-publication basis's evidence (where the address was found)."""
    match = re.search(r"https?://[^\s<>\"]+", evidence or "", re.IGNORECASE)
    return match.group(0).rstrip(".,;)") if match else _("an address we did not record")


def ending(subscription: Subscription) -> str:
    """What happens next for implied consent, in the contact's terms."""
    # Expired by the clock or by expire-consent: the contact reads the same words.
    if subscription.expires_at is None or subscription.state not in (SUBSCRIBED, EXPIRED):
        return ""
    if effective_state(subscription) == EXPIRED:
        return " " + _("This ended on %(date)s.", date=day(subscription.expires_at))
    return " " + _("This ends on %(date)s unless you say yes.", date=day(subscription.expires_at))


def mask_email(email: str | None) -> str:
    """s***@example.com: enough to recognise, not enough to harvest."""
    if not email or "@" not in email:
        return ""
    local, domain = email.rsplit("@", 1)
    return f"{local[:1]}***@{domain}"


def channel_words(channel: str) -> str:
    """How a change arrived, as the end of a history line says it."""
    words = {
        "preference_page": _("on this page"),
        "one_click": _("with the unsubscribe button of your mail app"),
        "email_confirmation": _("from the link we emailed you"),
        "signup_form": _("on the signup form"),
        "api": _("by the sender's systems"),
        "admin": _("by the sender's staff"),
        "import": _("by an import"),
        "system": _("automatically"),
    }
    return words.get(channel, channel)


def _until(detail: str) -> str:
    """The date in a pause's detail ("until 2026-03-01"), as the current language writes it."""
    match = re.search(r"(\d{4})-(\d{2})-(\d{2})", detail)
    if match is None:
        return detail
    return day(date(*(int(part) for part in match.groups())))


def action_words(event: ConsentEvent, name: str) -> str:
    """What an event did, in a sentence without its date or channel."""
    detail = event.detail or ""
    to_state = event.to_state or ""
    words = {
        "opt_in": lambda: _(
            "You said yes to %(list)s; it starts once you confirm by email", list=name
        ),
        "confirm": lambda: _("You confirmed %(list)s by email", list=name),
        "affirm": lambda: _("You confirmed that you want to keep %(list)s", list=name),
        "withdraw": lambda: _("%(list)s was stopped", list=name),
        "invite": lambda: _("You were invited to %(list)s", list=name),
        "subscribe": lambda: _("You were added to %(list)s", list=name),
        "expire": lambda: _("%(list)s ended: the implied consent ran out", list=name),
        "dispute": lambda: _(
            "You said you never agreed to %(list)s, and it was stopped", list=name
        ),
        "decline_business": lambda: _("You said no to business messages"),
        "allow_business": lambda: _("You allowed business messages again"),
        "business_address_added": lambda: _(
            "You asked to use %(address)s for business messages", address=detail
        ),
        "business_address_approved": lambda: _(
            "You approved %(address)s for business messages", address=detail
        ),
        "business_address_verified": lambda: _(
            "You confirmed the business address %(address)s", address=detail
        ),
        "route_business_mail": lambda: (
            _("Business messages now go to your business address")
            if to_state == "business"
            else _("Business messages now go to your personal address")
        ),
        "business_address_removed": lambda: _(
            "You removed the business address %(address)s", address=detail
        ),
        "route_list": lambda: (
            _("%(list)s now goes to your business address", list=name)
            if "business" in detail
            else _("%(list)s now goes to your personal address", list=name)
        ),
        "links_reset": lambda: _("You reset your links, so older links stopped working"),
        "receipts_on": lambda: _("You turned emailed receipts on"),
        "receipts_off": lambda: _("You turned emailed receipts off"),
        "language_set": lambda: _(
            "You chose %(language)s for your pages and emails",
            language=language_name(to_state),
        ),
        "accept_invitation": lambda: _(
            "You said yes to %(list)s from the invitation we emailed you", list=name
        ),
        "pause": lambda: _("You paused %(list)s until %(date)s", list=name, date=_until(detail)),
        "resume": lambda: _("%(list)s resumed", list=name),
        "pause_business": lambda: _(
            "You paused all business messages until %(date)s", date=_until(detail)
        ),
        "resume_business": lambda: _("Business messages resumed"),
        # The cadences are the list's own words (admin data), shown as written.
        "cadence": lambda: _(
            "You chose how often %(list)s arrives: %(cadence)s", list=name, cadence=detail
        ),
    }
    found = words.get(event.action)
    return found() if found else event.action.replace("_", " ").capitalize()


def language_name(tag: str) -> str:
    """A language's name in the current language (or the tag, if it is not one we speak)."""
    known = languages.normalise(tag)
    return languages.display_name(known, languages.current(), capitalised=False) if known else tag


def actor_name(actor: str) -> str:
    if actor == "contact":
        return _("you")
    if actor.startswith("admin:"):
        return _("the sender's staff")
    if actor.startswith("api:"):
        return _("the sender's systems")
    return actor


def describe(event: ConsentEvent) -> str:
    """One line of the contact's history, in plain language."""
    name = languages.list_name(event.mailing_list) if event.mailing_list else _("a list")
    what = action_words(event, name)
    how = channel_words(event.channel)
    if event.actor == "contact" or event.channel == "system":
        return _("%(date)s: %(what)s (%(how)s).", date=day(event.occurred_at), what=what, how=how)
    return _(
        "%(date)s: %(what)s (%(how)s, by %(who)s).",
        date=day(event.occurred_at),
        what=what,
        how=how,
        who=actor_name(event.actor),
    )


def history(contact: Contact, limit: int = 200) -> list[str]:
    """The contact's consent events, newest first, as sentences.

    Each event's list comes from the session's identity map when the page already
    loaded it (every offered list and every list the contact is on): no join and no
    second load of the lists' wording; any other list is loaded once by its id.
    """
    events = db.session.execute(
        db.select(ConsentEvent)
        .filter_by(contact_id=contact.id)
        .order_by(ConsentEvent.id.desc())
        .limit(limit)
    ).scalars()
    return [describe(event) for event in events]
