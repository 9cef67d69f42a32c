"""Blueprint: the contact's business address — add, verify, route, remove."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask_babel import gettext as _

from .. import addresses, consent, languages, tokens, wording
from ..consent import ConsentError
from ..extensions import db
from . import contact_from, contact_via, find_list, mail_sending_limit, sections_or_page

bp = Blueprint("business_address", __name__)


def refused(error: ConsentError):
    db.session.rollback()
    title = _("That didn't work")
    return render_template("public/message.html", title=title, text=str(error)), 409


@bp.post("/p/<token>/business-address")
@mail_sending_limit
def add(token: str):
    """Add a business address; it is used only after its emailed link is confirmed."""
    contact = contact_from(token)
    email = request.form.get("email", "")
    try:
        addresses.add_business_address(contact, email, contact_via())
    except ConsentError as error:
        return refused(error)
    db.session.commit()
    message = _(
        "To make sure it is you, we sent a link to %(personal)s. "
        "Once you approve there, we send a last link to %(business)s.",
        personal=wording.mask_email(contact.primary_email),
        business=wording.mask_email(email),
    )
    return sections_or_page(token, contact, message)


@bp.post("/p/<token>/business-address/route")
def route(token: str):
    """Send business lists to the business address or back to the personal one."""
    contact = contact_from(token)
    to = request.form.get("to", "")
    try:
        addresses.route_business_mail(contact, to, contact_via())
    except ConsentError as error:
        return refused(error)
    db.session.commit()
    message = (
        _("Saved: business messages go to your business address.")
        if to == "business"
        else _("Saved: business messages go to your personal address.")
    )
    return sections_or_page(token, contact, message)


@bp.post("/p/<token>/business-address/remove")
def remove(token: str):
    """Remove the business address; everything goes to the personal address again."""
    contact = contact_from(token)
    addresses.remove_business_address(contact, contact_via())
    db.session.commit()
    return sections_or_page(
        token, contact, _("Removed: everything goes to your personal address again.")
    )


@bp.post("/p/<token>/lists/<slug>/route")
def route_list(token: str, slug: str):
    """Deliver one personal list to the business address, if the contact wants that."""
    contact = contact_from(token)
    subscription = consent.find_subscription(contact, find_list(slug))
    if subscription is None:
        abort(404, description=_("You are not on this list."))
    to = request.form.get("to", "")
    try:
        addresses.route_list(subscription, to, contact_via())
    except ConsentError as error:
        return refused(error)
    db.session.commit()
    name = languages.list_name(subscription.mailing_list)
    message = (
        _("Saved: %(list)s goes to your business address.", list=name)
        if to == "business"
        else _("Saved: %(list)s goes to your personal address.", list=name)
    )
    return sections_or_page(token, contact, message)


def verification_from(token: str):
    """The contact, pending address, fingerprint and step ("owner" or "new") a link names."""
    claims = tokens.verify(tokens.VERIFY_ADDRESS, token)
    address = claims.contact.business_address
    fingerprint, step = claims.scope.get("a"), claims.scope.get("s")
    if address is None or addresses.address_fingerprint(address.email) != fingerprint:
        raise tokens.InvalidLink
    if step not in ("owner", "new"):
        raise tokens.InvalidLink
    languages.speak_to(claims.contact)
    return claims.contact, address, fingerprint, step


@bp.get("/verify-address/<token>")
def verify_page(token: str):
    """A page with one button; opening the emailed link changes nothing."""
    _contact, address, _, step = verification_from(token)
    return render_template(
        "public/verify_address.html",
        token=token,
        masked=wording.mask_email(address.email),
        address=address,
        step=step,
    )


@bp.post("/verify-address/<token>")
def verify(token: str):
    """Approve the change (from the address on file) or confirm the new address."""
    contact, address, fingerprint, step = verification_from(token)
    masked = wording.mask_email(address.email)
    if step == "owner":
        addresses.approve_business_address(contact, fingerprint, contact_via())
        text = _(
            "Approved. We sent a last link to %(address)s: open it there to finish.", address=masked
        )
    else:
        addresses.verify_business_address(contact, fingerprint, contact_via())
        text = _("Business messages now go to %(address)s.", address=masked)
    db.session.commit()
    return render_template("public/message.html", title=_("Thank you"), text=text)
