"""Blueprint: one-button answers from an email — "Yes" to an invitation, "keep it" before
implied consent ends.

Each GET shows a page with one button and changes nothing (mail scanners open
every link); the POST from that page does it. Each link is signed for its own
purpose and scoped to one contact and one list.
"""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_babel import gettext as _

from .. import consent, languages, tokens, wording
from ..consent import ConsentError
from ..extensions import db
from ..models import SUBSCRIBED, Subscription, utcnow
from . import contact_via, subscription_for

bp = Blueprint("asking", __name__)


def _answer(subscription: Subscription, title: str, text: str, status: int = 200):
    html = render_template(
        "public/message.html",
        title=title,
        text=text,
        link=tokens.manage_url(subscription.contact),
        link_text=_("See all your preferences"),
    )
    return html, status


@bp.get("/yes/<token>")
def invitation_page(token: str):
    """The invitation's "Yes": one button; opening the link changes nothing."""
    subscription = subscription_for(tokens.INVITATION_YES, token)
    return render_template(
        "public/asking/yes.html",
        token=token,
        subscription=subscription,
        state=consent.effective_state(subscription),
        manage_url=tokens.manage_url(subscription.contact),
    )


@bp.post("/yes/<token>")
def accept_invitation(token: str):
    """Subscribe at once: the link reached the invited mailbox (double opt-in)."""
    subscription = subscription_for(tokens.INVITATION_YES, token)
    mailing_list = subscription.mailing_list
    sent = subscription.invited_at
    invited = f" emailed on {sent:%Y-%m-%d}" if sent else ""
    evidence = (
        f"Pressed yes on the page linked from the invitation{invited}, "
        f"on {utcnow():%Y-%m-%d %H:%M:%S} UTC (notice v{mailing_list.notice_version}, "
        f"shown in {languages.current()})."
    )
    try:
        changed = consent.accept_invitation(
            subscription, contact_via("email_confirmation"), evidence=evidence
        )
    except ConsentError as error:
        db.session.rollback()
        return _answer(subscription, _("That didn't work"), str(error), 409)
    db.session.commit()
    name = languages.list_name(mailing_list)
    if changed:
        return _answer(
            subscription, _("Thank you"), _("Done: you will receive %(list)s.", list=name)
        )
    if subscription.state == SUBSCRIBED:
        return _answer(subscription, _("Thank you"), _("You already receive %(list)s.", list=name))
    return _answer(
        subscription,
        _("Nothing changed"),
        _(
            "This invitation to %(list)s is no longer open. You can choose on your page.",
            list=name,
        ),
    )


@bp.get("/keep/<token>")
def keep_page(token: str):
    """ "Keep receiving?": one button, the end date named; opening it changes nothing."""
    subscription = subscription_for(tokens.RECONFIRM, token)
    state = consent.effective_state(subscription)
    return render_template(
        "public/asking/keep.html",
        token=token,
        subscription=subscription,
        keepable=state == SUBSCRIBED and subscription.basis in consent.IMPLIED_MONTHS,
        why=wording.why(subscription),
        manage_url=tokens.manage_url(subscription.contact),
    )


@bp.post("/keep/<token>")
def keep(token: str):
    """Make implied consent the contact's own lasting yes (double opt-in, no end)."""
    subscription = subscription_for(tokens.RECONFIRM, token)
    name = languages.list_name(subscription.mailing_list)
    implied = subscription.basis in consent.IMPLIED_MONTHS
    if consent.effective_state(subscription) != SUBSCRIBED or not implied:
        if subscription.state == SUBSCRIBED:
            return _answer(
                subscription,
                _("Thank you"),
                _("You already receive %(list)s for good.", list=name),
            )
        return _answer(
            subscription,
            _("Nothing changed"),
            _("%(list)s cannot be kept from this link any more.", list=name),
        )
    consent.confirm(subscription, contact_via("email_confirmation"))
    db.session.commit()
    return _answer(
        subscription, _("Thank you"), _("Done: you will keep receiving %(list)s.", list=name)
    )
