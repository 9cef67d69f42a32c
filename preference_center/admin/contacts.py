"""Contacts: search as you type, one contact's consent and history, admin changes."""

from __future__ import annotations

from datetime import date

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import or_

from .. import consent, invitations, jurisdictions, languages, wording
from ..consent import ConsentError, Provenance
from ..extensions import db
from ..models import (
    BASES,
    INVITED,
    SUBSCRIBED,
    Address,
    ConsentEvent,
    Contact,
    MailingList,
)
from . import admin_via, bp, page_or_fragment, record_action
from .lists import find_list

RESULT_LIMIT = 25
REASON_MAX = 2000
# What an admin may set on a contact's behalf (withdrawal has its own button).
ADMIN_STATES = {INVITED: "Invite (asks them; sends nothing else)", SUBSCRIBED: "Subscribe"}


def search(query: str) -> list[Contact]:
    """Contacts whose name or any address contains ``query`` (case-insensitive)."""
    select = db.select(Contact).order_by(Contact.name, Contact.id).limit(RESULT_LIMIT)
    if query:
        by_address = db.select(Address.contact_id).where(
            Address.email.icontains(query, autoescape=True)
        )
        select = select.where(
            or_(Contact.id.in_(by_address), Contact.name.icontains(query, autoescape=True))
        )
    else:
        select = select.order_by(None).order_by(Contact.id.desc())
    return list(db.session.execute(select).scalars())


def find_contact(public_id: str) -> Contact:
    contact = db.session.execute(
        db.select(Contact).filter_by(public_id=public_id)
    ).scalar_one_or_none()
    if contact is None:
        abort(404, description="There is no such contact.")
    return contact


@bp.get("/contacts")
def contacts():
    """Search contacts by email or name; htmx asks for the results only, as you type."""
    query = request.args.get("q", "").strip()[:200]
    return page_or_fragment(
        "admin/contacts/index.html",
        "admin/contacts/_results.html",
        query=query,
        results=search(query),
    )


def contact_context(contact: Contact, **extra) -> dict:
    events = db.session.execute(
        db.select(ConsentEvent, MailingList.slug)
        .outerjoin(MailingList, ConsentEvent.list_id == MailingList.id)
        .where(ConsentEvent.contact_id == contact.id)
        .order_by(ConsentEvent.id)
    ).all()
    subscriptions = [(s, consent.effective_state(s), wording.why(s)) for s in contact.subscriptions]
    lists = db.session.execute(
        db.select(MailingList).where(MailingList.archived_at.is_(None)).order_by(MailingList.name)
    ).scalars()
    return {
        "contact": contact,
        "subscriptions": subscriptions,
        "events": events,
        "lists": list(lists),
        "bases": BASES,
        "ask_in_person": {
            s.id: rule
            for s, state, _why in subscriptions
            if state == INVITED and (rule := invitations.ask_in_person(s))
        },
        "default_jurisdiction": jurisdictions.default(),
        "admin_states": ADMIN_STATES,
        "languages": languages.SUPPORTED,
        "default_language": languages.default(),
        "form": {},
        **extra,
    }


@bp.get("/contacts/<public_id>")
def contact(public_id: str):
    """A contact's addresses, subscriptions with provenance, and full history."""
    return render_template("admin/contacts/show.html", **contact_context(find_contact(public_id)))


def refuse(contact: Contact, message: str, status: int = 422):
    """Nothing written; the contact page again with the admin's input and why."""
    db.session.rollback()
    context = contact_context(contact, error=message, form=request.form)
    return render_template("admin/contacts/show.html", **context), status


def reason_from_form() -> str | None:
    reason = (request.form.get("reason") or "").strip()
    return reason[:REASON_MAX] or None


@bp.post("/contacts/<public_id>/lists/<slug>/withdraw")
def contact_withdraw(public_id: str, slug: str):
    """Withdraw one list for a contact, with the admin's reason in the event."""
    contact = find_contact(public_id)
    mailing_list = find_list(slug)
    subscription = consent.find_subscription(contact, mailing_list)
    if subscription is None:
        abort(404, description="This contact is not on that list.")
    reason = reason_from_form()
    if reason is None:
        return refuse(contact, "Give a reason for the withdrawal: it is kept in the consent log.")
    changed = consent.withdraw(subscription, admin_via(), detail=reason)
    record_action("contact_withdraw", contact=public_id, list=slug, reason=reason, changed=changed)
    db.session.commit()
    flash(f"Withdrew {mailing_list.name}." if changed else f"{mailing_list.name} was already off.")
    return redirect(url_for("admin.contact", public_id=public_id), code=303)


@bp.post("/contacts/<public_id>/language")
def contact_language(public_id: str):
    """Set the language the contact's pages and mail use (logged as the admin's change)."""
    contact = find_contact(public_id)
    language = languages.normalise(request.form.get("language"))
    if language is None:
        return refuse(contact, f"Choose one of {', '.join(languages.SUPPORTED)}.")
    changed = consent.set_language(contact, language, admin_via())
    record_action("contact_language", contact=public_id, language=language, changed=changed)
    db.session.commit()
    flash(f"Language set to {language}." if changed else f"The language was already {language}.")
    return redirect(url_for("admin.contact", public_id=public_id), code=303)


def parse_day(text: str) -> date | None:
    if not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ConsentError(f"{text!r} is not a date (use YYYY-MM-DD).") from None


@bp.post("/contacts/<public_id>/consent")
def contact_place(public_id: str):
    """Invite a contact to a list, or subscribe them on a stated basis with evidence."""
    contact = find_contact(public_id)
    if contact.erased_at is not None:
        return refuse(contact, "This contact was erased; nothing can be added.", 409)
    form = request.form
    mailing_list = db.session.execute(
        db.select(MailingList).filter_by(slug=form.get("list", ""), archived_at=None)
    ).scalar_one_or_none()
    state = form.get("state", "")
    reason = reason_from_form()
    evidence = (form.get("evidence") or "").strip()
    basis = form.get("basis", "") if state == SUBSCRIBED else "none"
    if mailing_list is None:
        return refuse(contact, "Choose a list that is offered.")
    if state not in ADMIN_STATES:
        return refuse(contact, "Choose whether to invite or to subscribe.")
    if reason is None:
        return refuse(contact, "Give a reason for the change: it is kept in the consent log.")
    try:
        provenance = Provenance(
            source="admin",
            added_by=current_user.email,
            basis=basis,
            evidence=evidence,
            basis_date=parse_day(form.get("basis_date", "")),
            relationship_ended_on=parse_day(form.get("relationship_ended_on", "")),
        )
        _, outcome = consent.place(
            contact, mailing_list, state, provenance, admin_via(), detail=reason
        )
    except ConsentError as error:
        return refuse(contact, str(error), 409)
    if outcome == "suppressed":
        return refuse(
            contact,
            f"{mailing_list.name}: this contact withdrew or disputed it, so only they can "
            "opt in again (from their preference page).",
            409,
        )
    record_action(
        "contact_" + ("invite" if state == INVITED else "subscribe"),
        contact=public_id,
        list=mailing_list.slug,
        basis=basis,
        reason=reason,
        outcome=outcome,
    )
    db.session.commit()
    flash(f"{mailing_list.name}: {outcome}.")
    return redirect(url_for("admin.contact", public_id=public_id), code=303)


@bp.post("/contacts/<public_id>/jurisdiction")
def contact_jurisdiction(public_id: str):
    """Set where a contact is (ISO 3166-1 alpha-2); logged, since it changes the rules."""
    contact = find_contact(public_id)
    if contact.erased_at is not None:
        return refuse(contact, "This contact was erased; nothing can be changed.", 409)
    code = request.form.get("jurisdiction", "")
    try:
        changed = consent.set_jurisdiction(contact, code, admin_via())
    except jurisdictions.JurisdictionError as error:
        return refuse(contact, str(error))
    if changed:
        record_action("contact_jurisdiction", contact=public_id, jurisdiction=contact.jurisdiction)
    db.session.commit()
    flash(
        f"Jurisdiction: {contact.jurisdiction or 'unknown'}."
        if changed
        else "The jurisdiction was already that."
    )
    return redirect(url_for("admin.contact", public_id=public_id), code=303)
