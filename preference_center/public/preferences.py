"""Blueprint: the contact's preference page and its htmx endpoints."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    render_template,
    request,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from htmx_flask import make_response

from .. import consent, database, languages, leaving, links, tokens, wording
from ..consent import ConsentError
from ..extensions import db, limiter
from . import (
    Row,
    back_to_page,
    build_row,
    contact_from,
    contact_via,
    find_list,
    fragment,
    link_key,
    mail_sending_limit,
    mail_sending_rate,
    not_opting_in,
    page_context,
    refused,
    sections_or_page,
    wants_fragment,
)
from .leaving import offer_after_redirect, offered_after_redirect

bp = Blueprint("preferences", __name__)


@bp.get("/p/<token>")
def page(token: str):
    """The preference page: every list, its state, and why the contact is on it."""
    claims = tokens.verify(tokens.MANAGE, token, allow_expired=True)
    languages.speak_to(claims.contact)
    context = page_context(token, claims.contact)
    context.update(offered_after_redirect())
    if claims.expired:
        # An expired link may only say no: no details, no history.
        template = "public/preferences/withdraw_only.html"
    else:
        template = "public/preferences/page.html"
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
    # The link and the list are read before the write transaction: on SQLite it holds
    # the database's one write lock, from the contact's lock to the commit only.
    with database.reads_before_writing(db.session()):
        contact = contact_from(token, withdrawing=not wanted)
        mailing_list = find_list(slug)
    via = contact_via()
    notice = (
        f"Ticked on the preference page (notice v{mailing_list.notice_version}, "
        f"shown in {languages.current()})"
    )
    try:
        outcome, subscription = consent.choose_list(
            contact, mailing_list, wanted, via, evidence=notice
        )
    except ConsentError as error:
        row = build_row(contact, mailing_list, consent.find_subscription(contact, mailing_list))
        return refused(error, token, row)
    # The answer is built from what this transaction wrote and rendered after the
    # commit, which keeps the objects as written: reading them back would cost a
    # second transaction (a write-locked one on SQLite, as this is a POST).
    row = build_row(contact, mailing_list, subscription)
    row.message = saved_message(row, outcome)
    if outcome == consent.WITHDRAWN:
        row.leaving_url = leaving.question_url(contact, via.request_id)
    database.commit_keeping_objects(db.session())
    if not wants_fragment():
        if row.leaving_url:
            offer_after_redirect(row.leaving_url, slug)
        return back_to_page(token, row.message, f"list-{slug}")
    return fragment("public/preferences/_list_row.html", row=row, token=token)


def saved_message(row: Row, outcome: str) -> str:
    name = languages.list_name(row.mailing_list)
    if outcome == consent.OPTED_IN:
        return _("Almost done: we sent a confirmation link to %(address)s.", address=row.pending_to)
    if outcome == consent.RECONFIRMING:
        return _("We sent a link to confirm that you want to keep %(list)s.", list=name)
    if outcome == consent.WITHDRAWN:
        return _("Saved: you will no longer receive %(list)s.", list=name)
    return _("No change.")


@bp.post("/p/<token>/everything")
def withdraw_everything(token: str):
    """Unsubscribe from every list in one step."""
    contact = contact_from(token, withdrawing=True)
    via = contact_via()
    count = consent.withdraw_everything(contact, via)
    db.session.commit()
    message = (
        ngettext(
            "Done: you are off every list (%(num)s changed).",
            "Done: you are off every list (%(num)s changed).",
            count,
        )
        if count
        else _("You were on no list.")
    )
    question = leaving.question_url(contact, via.request_id) if count else None
    if question and not wants_fragment():
        offer_after_redirect(question, "everything")
    return sections_or_page(token, contact, message, leaving_url=question)


@bp.post("/p/<token>/business")
def business_choice(token: str):
    """Allow or decline business messages; personal lists are never touched."""
    choice = request.form.get("business")
    contact = contact_from(token, withdrawing=choice == "declined")
    if choice == "declined":
        consent.decline_business_contact(contact, contact_via())
        message = _(
            "Done: no business messages. Personal messages from the sender are not affected."
        )
    elif choice == "allowed":
        consent.allow_business_contact(contact, contact_via())
        message = _("Business messages are allowed again. Choose the lists you want below.")
    else:
        abort(400, description=_("Choose whether business messages are allowed."))
    db.session.commit()
    return sections_or_page(token, contact, message)


@bp.post("/p/<token>/lists/<slug>/dispute")
def dispute(token: str, slug: str):
    """ "I never agreed to this": withdraw now and flag it for the admins."""
    contact = contact_from(token, withdrawing=True)
    mailing_list = find_list(slug)
    subscription = consent.find_subscription(contact, mailing_list)
    if subscription is None:
        abort(404, description=_("You are not on this list."))
    consent.dispute(subscription, contact_via(), request.form.get("words", ""))
    db.session.commit()
    message = _("Thank you. You are off this list and we have told the sender.")
    if not wants_fragment():
        return back_to_page(token, message, f"list-{slug}")
    row = build_row(contact, mailing_list, subscription)
    row.message = message
    return fragment("public/preferences/_list_row.html", row=row, token=token)


@bp.post("/p/<token>/reset")
@mail_sending_limit
def reset_links(token: str):
    """Make every earlier manage link stop working and email a fresh one."""
    contact = contact_from(token)
    links.reset(contact, contact_via())
    db.session.commit()
    text = _(
        "Done: the links you had no longer work. We emailed a new one to %(address)s.",
        address=wording.mask_email(contact.primary_email),
    )
    title = _("Your links were reset")
    return render_template("public/message.html", title=title, text=text)


@bp.post("/p/<token>/receipts")
def receipts(token: str):
    """Turn emailed receipts of page changes on or off."""
    contact = contact_from(token)
    wanted = request.form.get("receipts")
    if wanted not in ("on", "off"):
        abort(400, description=_("Choose whether you want receipts."))
    consent.set_receipts(contact, wanted == "on", contact_via())
    db.session.commit()
    message = (
        _("Saved: we will email you a receipt after changes.")
        if wanted == "on"
        else _("Saved: no more receipts.")
    )
    return back_to_page(token, message, "your-history")


@bp.post("/p/<token>/language")
def language(token: str):
    """Store the contact's language (logged like a preference); the page again, in it."""
    contact = contact_from(token)
    wanted = languages.normalise(request.form.get("language"))
    if wanted is None:
        abort(400, description=_("Choose one of the languages offered."))
    consent.set_language(contact, wanted, contact_via())
    db.session.commit()
    languages.speak_to(contact)
    message = _(
        "Saved: pages and emails are now in %(language)s.", language=wording.language_name(wanted)
    )
    if not wants_fragment():
        return back_to_page(token, message, "language")
    db.session.refresh(contact)
    context = page_context(token, contact, message)
    context["history"] = wording.history(contact)
    return fragment("public/preferences/page.html", **context)
