"""Contact-facing blueprints: the preference page and everything a manage link reaches.

What several of these pages share lives here: who is acting, the rows of the page,
fragments for htmx and the 303 back to the page without it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from htmx_flask import make_response
from sqlalchemy.orm import joinedload

from .. import consent, languages, tokens, wording
from ..consent import ConsentError, Via
from ..extensions import db, limiter
from ..models import (
    BUSINESS,
    PENDING,
    PERSONAL,
    SUBSCRIBED,
    Channel,
    Contact,
    MailingList,
    Subscription,
    utcnow,
)


def link_key() -> str:
    """Rate-limit bucket of one manage link (hashed: no token in the limiter's store)."""
    return "link:" + hashlib.sha256(request.view_args["token"].encode()).hexdigest()


def not_opting_in() -> bool:
    return request.form.get("subscribed") != "yes"


# Actions that email the contact (confirmations, approvals, exports) are limited
# per link, so a forwarded link cannot flood someone's inbox. Saying no never is.
def mail_sending_rate() -> str:
    return current_app.config["MAIL_SENDING_RATE_LIMIT"]


mail_sending_limit = limiter.shared_limit(mail_sending_rate, "mail-per-link", key_func=link_key)


@dataclass
class Row:
    """What one list looks like to this contact."""

    mailing_list: MailingList
    subscription: Subscription | None
    state: str | None
    label: str
    why: str | None
    checked: bool
    disabled: bool
    affirmable: bool
    disputable: bool
    pending_to: str | None
    routable: bool = False
    message: str | None = None
    # The end of the pause holding this list now, and whether it is the list's own.
    paused_until: datetime | None = None
    own_pause: bool = False
    cadences: list[str] = field(default_factory=list)
    cadence: str | None = None
    # The optional question after this row's withdrawal (its signed address).
    leaving_url: str | None = None


def contact_via(channel: str = Channel.PREFERENCE_PAGE) -> Via:
    """The contact acting through ``channel`` (this page by default), with the
    request's fingerprint."""
    return Via(
        channel=channel,
        actor="contact",
        ip=request.remote_addr,
        user_agent=request.user_agent.string or None,
        language=languages.current(),
    )


def contact_from(token: str, *, withdrawing: bool = False) -> Contact:
    """The contact a manage token names; any bad token is the same 404 page.

    Withdrawal never expires: an expired link may still say no (``withdrawing``),
    but seeing details or saying yes needs a fresh link.
    """
    claims = tokens.verify(tokens.MANAGE, token, allow_expired=True)
    languages.speak_to(claims.contact)
    if claims.expired and not withdrawing:
        raise tokens.LinkExpired
    return claims.contact


def build_row(
    contact: Contact, mailing_list: MailingList, subscription: Subscription | None
) -> Row:
    state = consent.effective_state(subscription) if subscription else None
    declined = consent.declines_business_mail(contact, mailing_list)
    receiving = state in (SUBSCRIBED, PENDING)
    paused = consent.paused_until(subscription) if state == SUBSCRIBED else None
    return Row(
        paused_until=paused,
        own_pause=paused is not None and subscription.paused_until == paused,
        cadences=mailing_list.cadence_choices if receiving else [],
        cadence=consent.cadence_of(subscription) if receiving else None,
        mailing_list=mailing_list,
        subscription=subscription,
        state=state,
        label=wording.state_label(state),
        why=wording.why(subscription) if subscription else None,
        checked=state in (SUBSCRIBED, PENDING),
        disabled=declined and state not in (SUBSCRIBED, PENDING),
        affirmable=state == SUBSCRIBED and subscription.basis in consent.AFFIRMABLE,
        disputable=subscription is not None
        and subscription.added_by != "you"
        and subscription.disputed_at is None,
        pending_to=wording.mask_email(contact.deliver_to(mailing_list, subscription))
        if state == PENDING
        else None,
        # A personal list may go to a verified business address if the contact asks.
        routable=mailing_list.audience == PERSONAL
        and state in (SUBSCRIBED, PENDING)
        and contact.business_address is not None
        and contact.business_address.verified_at is not None,
    )


def rows_for(contact: Contact) -> dict[str, list[Row]]:
    """Every list the contact is on, then every other list they could join.

    One query loads every offered list with this contact's subscription to it
    (and archived lists only where the contact is still on them): no query per
    list or per subscription.
    """
    pairs = db.session.execute(
        db.select(MailingList, Subscription)
        .outerjoin(
            Subscription,
            (Subscription.list_id == MailingList.id) & (Subscription.contact_id == contact.id),
        )
        .where(MailingList.archived_at.is_(None) | Subscription.id.is_not(None))
        .order_by(MailingList.name)
    ).all()

    def place(pair) -> tuple[int, int]:
        mailing_list, subscription = pair
        if subscription is None:
            return (2, 0)
        # Archived lists the contact is still on come after the offered ones, oldest first.
        return (1, subscription.id) if mailing_list.archived_at else (0, 0)

    sections: dict[str, list[Row]] = {PERSONAL: [], BUSINESS: []}
    for mailing_list, subscription in sorted(pairs, key=place):
        sections[mailing_list.audience].append(build_row(contact, mailing_list, subscription))
    return sections


def page_context(token: str, contact: Contact, message: str | None = None) -> dict:
    return {
        "token": token,
        "contact": contact,
        "sections": rows_for(contact),
        "masked_email": wording.mask_email(contact.primary_email),
        "business_declined": consent.declines_business_mail(contact),
        "business_address": contact.business_address,
        "business_masked": wording.mask_email(
            contact.business_address.email if contact.business_address else None
        ),
        "business_routed": contact.business_mail_to_business_address,
        "business_paused_until": contact.business_paused_until
        if contact.business_paused_until and contact.business_paused_until > utcnow()
        else None,
        "message": message,
        # Addresses whose mail bounced: the contact should know why nothing arrives.
        "undeliverable": [
            (wording.mask_email(a.email), a.undeliverable_since)
            for a in contact.addresses
            if a.undeliverable_since is not None
        ],
    }


def wants_fragment() -> bool:
    """Answer with a partial only for a plain htmx request (not boosted or restoring)."""
    return (
        bool(request.htmx) and not request.htmx.boosted and not request.htmx.history_restore_request
    )


def fragment(template: str, **context):
    response = make_response(render_template(template, **context))
    response.headers["Vary"] = "HX-Request"
    return response


def back_to_page(token: str, message: str, anchor: str | None = None):
    """Without JavaScript: the whole page again (303), with what just happened."""
    flash(message)
    return redirect(url_for("preferences.page", token=token, _anchor=anchor), code=303)


def find_list(slug: str) -> MailingList:
    # With its wording in the same statement (the relationship's own loading is a second).
    mailing_list = (
        db.session.execute(
            db.select(MailingList)
            .options(joinedload(MailingList.translations))
            .filter_by(slug=slug)
        )
        .unique()
        .scalar_one_or_none()
    )
    if mailing_list is None:
        abort(404, description=_("There is no such list."))
    return mailing_list


def refused(error: ConsentError, token: str, row: Row | None = None):
    """A change the rules refuse: nothing is written, the contact is told why."""
    db.session.rollback()
    if row is not None and wants_fragment():
        row.message = str(error)
        return fragment("public/preferences/_list_row.html", row=row, token=token)
    title = _("That didn't work")
    return render_template("public/message.html", title=title, text=str(error)), 409


def sections_or_page(token: str, contact: Contact, message: str, **extra):
    if not wants_fragment():
        return back_to_page(token, message)
    db.session.refresh(contact)
    context = {**page_context(token, contact, message), **extra}
    return fragment("public/preferences/_sections.html", **context)


def subscription_for(purpose: str, token: str) -> Subscription:
    """The subscription a link for one (contact, list) names, speaking the contact's language;
    any other token is the invalid-link page."""
    claims = tokens.verify(purpose, token)
    languages.speak_to(claims.contact)
    mailing_list = db.session.execute(
        db.select(MailingList).filter_by(slug=claims.scope.get("l"))
    ).scalar_one_or_none()
    subscription = mailing_list and consent.find_subscription(claims.contact, mailing_list)
    if subscription is None:
        raise tokens.InvalidLink
    return subscription


def register_blueprints(app) -> None:
    """Register every contact-facing blueprint (the package's one upward import)."""
    from . import (
        asking,
        business_address,
        confirmation,
        fresh_link,
        leaving,
        pausing,
        preferences,
        rights,
        signup,
        unsubscribe,
    )

    for module in (
        preferences,
        business_address,
        fresh_link,
        confirmation,
        rights,
        unsubscribe,
        signup,
        asking,
        pausing,
        leaving,
    ):
        app.register_blueprint(module.bp)
