"""Blueprint: pause instead of leaving, and how often, on the preference page.

Each endpoint answers an htmx request with the list's row (or the page's
sections) and a plain form post with a 303 back to the page.
"""

from __future__ import annotations

from flask import Blueprint, abort, request

from .. import consent, wording
from ..consent import ConsentError
from ..extensions import db
from . import (
    back_to_page,
    build_row,
    contact_from,
    contact_via,
    find_list,
    fragment,
    refused,
    sections_or_page,
    wants_fragment,
)

bp = Blueprint("pausing", __name__)


def _days() -> int:
    try:
        return int(request.form.get("days", ""))
    except ValueError:
        abort(400, description="Choose how long to pause: 30 or 90 days.")


def _row_answer(token: str, contact, mailing_list, subscription, message: str):
    row = build_row(contact, mailing_list, subscription)
    row.message = message
    if not wants_fragment():
        db.session.commit()
        return back_to_page(token, message, f"list-{mailing_list.slug}")
    response = fragment("public/preferences/_list_row.html", row=row, token=token)
    db.session.commit()
    return response


def _subscription(token: str, slug: str, *, withdrawing: bool = False):
    contact = contact_from(token, withdrawing=withdrawing)
    mailing_list = find_list(slug)
    subscription = consent.find_subscription(contact, mailing_list)
    if subscription is None:
        abort(404, description="You are not on this list.")
    return contact, mailing_list, subscription


@bp.post("/p/<token>/lists/<slug>/pause")
def pause(token: str, slug: str):
    """Pause one list for 30 or 90 days; it resumes by itself."""
    days = _days()
    # Pausing sends less: like saying no, an expired link may still do it.
    contact, mailing_list, subscription = _subscription(token, slug, withdrawing=True)
    try:
        consent.pause(subscription, days, contact_via())
    except ConsentError as error:
        return refused(error, token, build_row(contact, mailing_list, subscription))
    until = wording.day(subscription.paused_until)
    message = f"Paused: nothing from {mailing_list.name} until {until}. It then resumes by itself."
    return _row_answer(token, contact, mailing_list, subscription, message)


@bp.post("/p/<token>/lists/<slug>/resume")
def resume(token: str, slug: str):
    """End a list's pause now."""
    contact, mailing_list, subscription = _subscription(token, slug)
    changed = consent.resume(subscription, contact_via())
    message = f"Resumed: you receive {mailing_list.name} again." if changed else "No change."
    return _row_answer(token, contact, mailing_list, subscription, message)


@bp.post("/p/<token>/lists/<slug>/cadence")
def cadence(token: str, slug: str):
    """Choose how often a list arrives, among the cadences it offers."""
    contact, mailing_list, subscription = _subscription(token, slug)
    chosen = request.form.get("cadence", "")
    try:
        changed = consent.choose_cadence(subscription, chosen, contact_via())
    except ConsentError as error:
        return refused(error, token, build_row(contact, mailing_list, subscription))
    message = f"Saved: {mailing_list.name} — {chosen}." if changed else "No change."
    return _row_answer(token, contact, mailing_list, subscription, message)


@bp.post("/p/<token>/business/pause")
def pause_business(token: str):
    """Pause every business list for 30 or 90 days."""
    days = _days()
    contact = contact_from(token, withdrawing=True)
    try:
        consent.pause_business(contact, days, contact_via())
    except ConsentError as error:
        return refused(error, token)
    until = wording.day(contact.business_paused_until)
    db.session.commit()
    message = f"Paused: no business messages until {until}. They then resume by themselves."
    return sections_or_page(token, contact, message)


@bp.post("/p/<token>/business/resume")
def resume_business(token: str):
    """End the pause of all business mail now."""
    contact = contact_from(token)
    changed = consent.resume_business(contact, contact_via())
    db.session.commit()
    message = "Resumed: business messages arrive again." if changed else "No change."
    return sections_or_page(token, contact, message)
