"""Blueprint: RFC 8058 one-click unsubscribe at /u/<token>.

Mail providers POST ``List-Unsubscribe=One-Click`` to the URL of the
List-Unsubscribe header, without cookies, a session or a CSRF token, and do not
follow redirects: so the POST is CSRF-exempt, answers 200 with a tiny page,
and never touches the session (no Set-Cookie). GET and HEAD only show a page
with one button, because mail scanners open every link.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask_babel import gettext as _

from .. import consent, languages, leaving, tokens, wording
from ..extensions import csrf, db
from ..models import MailingList, Subscription
from . import contact_via

bp = Blueprint("unsubscribe", __name__)
# RFC 8058 senders post without any cookie or token; the signed URL is the credential.
csrf.exempt(bp)

ONE_CLICK_FIELD, ONE_CLICK_VALUE = "List-Unsubscribe", "One-Click"
# Sent only by the button of our own page, never by RFC 8058 senders.
FROM_PAGE_FIELD, FROM_PAGE_VALUE = "from", "page"


def target(token: str) -> tuple[tokens.LinkClaims, MailingList, Subscription | None]:
    """The contact, list and subscription a one-click token names.

    Versions are not checked: resetting one's manage links must not break the
    withdraw-only links in mail already sent (a leaked one can only unsubscribe).
    """
    claims = tokens.verify(tokens.UNSUBSCRIBE, token, check_version=False)
    mailing_list = db.session.execute(
        db.select(MailingList).filter_by(slug=claims.scope.get("l"))
    ).scalar_one_or_none()
    if mailing_list is None:
        raise tokens.InvalidLink
    languages.speak_to(claims.contact)
    return claims, mailing_list, consent.find_subscription(claims.contact, mailing_list)


def preferences_link(_claims: tokens.LinkClaims) -> str:
    """Where "see all your preferences" goes: the page that emails a fresh manage link.

    Never a manage link itself: a one-click link lives 400 days, a manage link
    far less, so a one-click link must not open the full page (issue 17, #4).
    """
    return tokens.public_url("fresh_link.form")


def respond(html: str, status: int = 200):
    return html, status, {"Cache-Control": "no-store", "Content-Type": "text/html; charset=utf-8"}


@bp.get("/u/<token>")
def page(token: str):
    """A page with one unsubscribe button; opening it (GET or HEAD) changes nothing."""
    claims, mailing_list, subscription = target(token)
    state = consent.effective_state(subscription) if subscription else None
    html = render_template(
        "public/unsubscribe.html",
        token=token,
        mailing_list=mailing_list,
        state=state,
        masked_email=wording.mask_email(claims.contact.primary_email),
        preferences_url=preferences_link(claims),
    )
    return respond(html)


@bp.post("/u/<token>")
def one_click(token: str):
    """Withdraw from the list at once (RFC 8058); 200, no redirect, no cookie."""
    claims, mailing_list, subscription = target(token)
    if request.form.get(ONE_CLICK_FIELD) != ONE_CLICK_VALUE:
        abort(400, description="A one-click unsubscribe sends List-Unsubscribe=One-Click.")
    name = languages.list_name(mailing_list)
    if subscription is None:
        text = _("You are not on %(list)s; nothing was changed.", list=name)
    else:
        via = contact_via("one_click")
        changed = consent.withdraw(subscription, via)
        db.session.commit()
        text = (
            _("You are unsubscribed from %(list)s.", list=name)
            if changed
            else _("You were already unsubscribed from %(list)s.", list=name)
        )
        if changed and request.form.get(FROM_PAGE_FIELD) == FROM_PAGE_VALUE:
            # A person pressed the page's button: the answer may ask, optionally, why.
            # (The header POST of a mail provider never sends this field.)
            html = render_template(
                "public/unsubscribed_page.html",
                text=text,
                leaving_url=leaving.question_url(claims.contact, via.request_id),
                leaving_key=mailing_list.slug,
                preferences_url=preferences_link(claims),
            )
            return respond(html)
    return respond(render_template("public/unsubscribed.html", text=text))
