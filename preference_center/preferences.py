"""Blueprint: the contact's preference page and its htmx endpoints."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from htmx_flask import make_response

from . import consent, links, tokens, wording
from .consent import ConsentError, Via
from .extensions import db, limiter
from .may_send import deliver_to
from .models import (
    BUSINESS,
    BUSINESS_DECLINED,
    PENDING,
    PERSONAL,
    SUBSCRIBED,
    Contact,
    MailingList,
    Subscription,
)

bp = Blueprint("preferences", __name__)


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


def contact_via(channel: str = "preference_page") -> Via:
    """The contact acting through ``channel`` (this page by default), with the
    request's fingerprint."""
    return Via(
        channel=channel,
        actor="contact",
        ip=request.remote_addr,
        user_agent=request.user_agent.string or None,
    )


class LinkExpired(Exception):
    """A genuine manage link past its age, used for something other than saying no."""


def contact_from(token: str, *, withdrawing: bool = False) -> Contact:
    """The contact a manage token names; any bad token is the same 404 page.

    Withdrawal never expires: an expired link may still say no (``withdrawing``),
    but seeing details or saying yes needs a fresh link.
    """
    claims = tokens.verify(tokens.MANAGE, token, allow_expired=True)
    if claims.expired and not withdrawing:
        raise LinkExpired
    return claims.contact


def build_row(
    contact: Contact, mailing_list: MailingList, subscription: Subscription | None
) -> Row:
    state = consent.effective_state(subscription) if subscription else None
    declined = mailing_list.audience == BUSINESS and contact.business_contact == BUSINESS_DECLINED
    return Row(
        mailing_list=mailing_list,
        subscription=subscription,
        state=state,
        label=wording.STATE_LABELS.get(state, "Off — you are not on this list"),
        why=wording.why(subscription) if subscription else None,
        checked=state in (SUBSCRIBED, PENDING),
        disabled=declined and state not in (SUBSCRIBED, PENDING),
        affirmable=state == SUBSCRIBED and subscription.basis in consent.IMPLIED_MONTHS,
        disputable=subscription is not None
        and subscription.added_by != "you"
        and subscription.disputed_at is None,
        pending_to=wording.mask_email(deliver_to(contact, mailing_list, subscription))
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
        "business_declined": contact.business_contact == BUSINESS_DECLINED,
        "business_address": contact.business_address,
        "business_masked": wording.mask_email(
            contact.business_address.email if contact.business_address else None
        ),
        "business_routed": contact.business_mail_to_business_address,
        "message": message,
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
    mailing_list = db.session.execute(
        db.select(MailingList).filter_by(slug=slug)
    ).scalar_one_or_none()
    if mailing_list is None:
        abort(404, description="There is no such list.")
    return mailing_list


def refused(error: ConsentError, token: str, row: Row | None = None):
    """A change the rules refuse: nothing is written, the contact is told why."""
    db.session.rollback()
    if row is not None and wants_fragment():
        row.message = str(error)
        return fragment("preferences/_list_row.html", row=row, token=token)
    return render_template("message.html", title="That didn't work", text=str(error)), 409


@bp.get("/p/<token>")
def page(token: str):
    """The preference page: every list, its state, and why the contact is on it."""
    claims = tokens.verify(tokens.MANAGE, token, allow_expired=True)
    context = page_context(token, claims.contact)
    if claims.expired:
        # An expired link may only say no: no details, no history.
        template = "preferences/withdraw_only.html"
    else:
        template = "preferences/page.html"
        context["history"] = wording.history(claims.contact)
    response = make_response(render_template(template, **context))
    response.headers["Vary"] = "HX-Request"
    return response


@bp.post("/p/<token>/lists/<slug>")
@limiter.shared_limit(
    mail_sending_rate, "mail-per-link", key_func=link_key, exempt_when=not_opting_in
)
def toggle(token: str, slug: str):
    """Turn one list on or off; the htmx row or a 303 back to the page."""
    wanted = request.form.get("subscribed") == "yes"
    contact = contact_from(token, withdrawing=not wanted)
    mailing_list = find_list(slug)
    subscription = consent.find_subscription(contact, mailing_list)
    try:
        if wanted:
            notice = f"Ticked on the preference page (notice v{mailing_list.notice_version})"
            outcome = consent.opt_in(contact, mailing_list, contact_via(), evidence=notice)
        else:
            changed = subscription is not None and consent.withdraw(subscription, contact_via())
            outcome = "withdrawn" if changed else consent.UNCHANGED
    except ConsentError as error:
        return refused(error, token, build_row(contact, mailing_list, subscription))
    # The answer is built from what this transaction wrote, before the commit:
    # after it every object is expired, and reading them back would cost a
    # second transaction (a write-locked one on SQLite, as this is a POST).
    # The session's identity map holds one object per row: ``subscription`` is the
    # one the verb changed, unless the verb just created it.
    subscription = subscription or consent.find_subscription(contact, mailing_list)
    row = build_row(contact, mailing_list, subscription)
    row.message = saved_message(row, outcome)
    if not wants_fragment():
        db.session.commit()
        return back_to_page(token, row.message, f"list-{slug}")
    response = fragment("preferences/_list_row.html", row=row, token=token)
    db.session.commit()
    return response


def saved_message(row: Row, outcome: str) -> str:
    name = row.mailing_list.name
    if outcome == consent.OPTED_IN:
        return f"Almost done: we sent a confirmation link to {row.pending_to}."
    if outcome == consent.RECONFIRMING:
        return f"We sent a link to confirm that you want to keep {name}."
    if outcome == "withdrawn":
        return f"Saved: you will no longer receive {name}."
    return "No change."


@bp.post("/p/<token>/everything")
def withdraw_everything(token: str):
    """Unsubscribe from every list in one step."""
    contact = contact_from(token, withdrawing=True)
    count = consent.withdraw_everything(contact, contact_via())
    db.session.commit()
    message = (
        f"Done: you are off every list ({count} changed)." if count else "You were on no list."
    )
    return sections_or_page(token, contact, message)


@bp.post("/p/<token>/business")
def business_choice(token: str):
    """Allow or decline business messages; personal lists are never touched."""
    choice = request.form.get("business")
    contact = contact_from(token, withdrawing=choice == "declined")
    if choice == "declined":
        consent.decline_business_contact(contact, contact_via())
        message = "Done: no business messages. Personal messages from the sender are not affected."
    elif choice == "allowed":
        consent.allow_business_contact(contact, contact_via())
        message = "Business messages are allowed again. Choose the lists you want below."
    else:
        abort(400, description="Choose whether business messages are allowed.")
    db.session.commit()
    return sections_or_page(token, contact, message)


@bp.post("/p/<token>/lists/<slug>/dispute")
def dispute(token: str, slug: str):
    """ "I never agreed to this": withdraw now and flag it for the admins."""
    contact = contact_from(token, withdrawing=True)
    mailing_list = find_list(slug)
    subscription = consent.find_subscription(contact, mailing_list)
    if subscription is None:
        abort(404, description="You are not on this list.")
    consent.dispute(subscription, contact_via(), request.form.get("words", ""))
    db.session.commit()
    message = "Thank you. You are off this list and we have told the sender."
    if not wants_fragment():
        return back_to_page(token, message, f"list-{slug}")
    row = build_row(contact, mailing_list, subscription)
    row.message = message
    return fragment("preferences/_list_row.html", row=row, token=token)


def sections_or_page(token: str, contact: Contact, message: str):
    if not wants_fragment():
        return back_to_page(token, message)
    db.session.refresh(contact)
    return fragment("preferences/_sections.html", **page_context(token, contact, message))


@bp.post("/p/<token>/reset")
@mail_sending_limit
def reset_links(token: str):
    """Make every earlier manage link stop working and email a fresh one."""
    contact = contact_from(token)
    links.reset(contact, contact_via())
    db.session.commit()
    text = (
        "Done: the links you had no longer work. We emailed a new one to "
        f"{wording.mask_email(contact.primary_email)}."
    )
    return render_template("message.html", title="Your links were reset", text=text)


@bp.post("/p/<token>/receipts")
def receipts(token: str):
    """Turn emailed receipts of page changes on or off."""
    contact = contact_from(token)
    wanted = request.form.get("receipts")
    if wanted not in ("on", "off"):
        abort(400, description="Choose whether you want receipts.")
    consent.set_receipts(contact, wanted == "on", contact_via())
    db.session.commit()
    message = (
        "Saved: we will email you a receipt after changes."
        if wanted == "on"
        else "Saved: no more receipts."
    )
    return back_to_page(token, message, "your-history")
