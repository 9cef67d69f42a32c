"""Blueprint: pause instead of leaving, and how often, on the preference page.

Each endpoint answers an htmx request with the list's row (or the page's
sections) and a plain form post with a 303 back to the page.
"""

from __future__ import annotations

from flask import Blueprint, abort, request
from flask_babel import gettext as _

from .. import consent, languages, wording
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
        abort(400, description=_("Choose how long to pause: 30 or 90 days."))


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
        abort(404, description=_("You are not on this list."))
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
    message = _(
        "Paused: nothing from %(list)s until %(date)s. It then resumes by itself.",
        list=languages.list_name(mailing_list),
        date=until,
    )
    return _row_answer(token, contact, mailing_list, subscription, message)


@bp.post("/p/<token>/lists/<slug>/resume")
def resume(token: str, slug: str):
    """End a list's pause now."""
    contact, mailing_list, subscription = _subscription(token, slug)
    changed = consent.resume(subscription, contact_via())
    name = languages.list_name(mailing_list)
    message = _("Resumed: you receive %(list)s again.", list=name) if changed else _("No change.")
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
    # The cadence is the list's own word for it (admin data), shown as written.
    name = languages.list_name(mailing_list)
    message = (
        _("Saved: %(list)s — %(cadence)s.", list=name, cadence=chosen)
        if changed
        else _("No change.")
    )
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
    message = _(
        "Paused: no business messages until %(date)s. They then resume by themselves.", date=until
    )
    return sections_or_page(token, contact, message)


@bp.post("/p/<token>/business/resume")
def resume_business(token: str):
    """End the pause of all business mail now."""
    contact = contact_from(token)
    changed = consent.resume_business(contact, contact_via())
    db.session.commit()
    message = _("Resumed: business messages arrive again.") if changed else _("No change.")
    return sections_or_page(token, contact, message)
