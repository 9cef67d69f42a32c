"""Blueprint: confirming a subscription from the emailed link (double opt-in).

The GET only shows a button: mail scanners open every link, so only the
POST from that page confirms.
"""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_babel import gettext as _

from .. import consent, languages, tokens, wording
from ..extensions import db
from ..models import SUBSCRIBED
from . import contact_via, subscription_for

bp = Blueprint("confirmation", __name__)


@bp.get("/confirm/<token>")
def confirm_page(token: str):
    """A page with one button; opening the link changes nothing."""
    subscription = subscription_for(tokens.CONFIRM, token)
    return render_template(
        "public/confirm.html",
        token=token,
        subscription=subscription,
        state_label=wording.state_label(consent.effective_state(subscription)),
        manage_url=tokens.manage_url(subscription.contact),
    )


@bp.post("/confirm/<token>")
def confirm(token: str):
    """Confirm the pending subscription named by the link."""
    subscription = subscription_for(tokens.CONFIRM, token)
    via = contact_via("email_confirmation")
    changed = consent.confirm(subscription, via)
    db.session.commit()
    name = languages.list_name(subscription.mailing_list)
    if changed:
        text_ = _("Confirmed: you will receive %(list)s.", list=name)
    elif subscription.state == SUBSCRIBED:
        text_ = _("You already receive %(list)s.", list=name)
    else:
        text_ = _(
            "There is nothing to confirm for %(list)s. You can choose again on your page.",
            list=name,
        )
    return render_template(
        "public/message.html",
        title=_("Thank you"),
        text=text_,
        link=tokens.manage_url(subscription.contact),
        link_text=_("See all your preferences"),
    )
