"""Blueprint: RFC 8058 one-click unsubscribe at /u/<token>.

Mail providers POST ``List-Unsubscribe=One-Click`` to the URL of the
List-Unsubscribe header, without cookies, a session or a CSRF token, and do not
follow redirects: so the POST is CSRF-exempt, answers 200 with a tiny page,
and never touches the session (no Set-Cookie). GET and HEAD only show a page
with one button, because mail scanners open every link.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import gettext as _

from .. import consent, languages, tokens, wording
from ..extensions import csrf, db
from ..models import MailingList, Subscription
from . import contact_via

bp = Blueprint("unsubscribe", __name__)
# RFC 8058 senders post without any cookie or token; the signed URL is the credential.
csrf.exempt(bp)

ONE_CLICK_FIELD, ONE_CLICK_VALUE = "List-Unsubscribe", "One-Click"


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


def preferences_link(claims: tokens.LinkClaims) -> str:
    """A manage link, unless the contact revoked the links issued with this one."""
    contact = claims.contact
    if claims.version != contact.token_version:
        # The page where a contact asks for a fresh link by email (PRODUCT.md: GET /p).
        return f"{current_app.config['PUBLIC_BASE_URL']}/p"
    return tokens.manage_url(contact)


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
    return respond(render_template("public/unsubscribed.html", text=text))
