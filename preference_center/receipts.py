"""Emailed receipts: one summary for a burst of page changes, not one per click."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext
from sqlalchemy.orm import joinedload

from . import languages, mailer, wording
from .extensions import db
from .models import ConsentEvent, Contact, utcnow


def queue_due(now: datetime | None = None) -> int:
    """Queue a receipt for every contact whose batch window has closed."""
    now = now or utcnow()
    window = timedelta(seconds=current_app.config["RECEIPT_DELAY_SECONDS"])
    due = db.session.execute(
        db.select(Contact)
        .where(Contact.receipt_due_at.is_not(None), Contact.receipt_due_at <= now)
        .with_for_update(skip_locked=True)
    ).scalars()
    count = 0
    for contact in list(due):
        since = contact.receipt_due_at - window
        contact.receipt_due_at = None
        if not contact.receipts_enabled or contact.primary_email is None:
            continue
        # The history lines are written in the language the mail goes in.
        with languages.speaking(languages.of_contact(contact)):
            changes = [wording.describe(event) for event in page_changes(contact, since)]
        if changes:
            mailer.queue(
                "receipt",
                contact.primary_email,
                lazy_gettext(
                    "Your preference changes at %(organisation)s",
                    organisation=current_app.config["ORGANISATION_NAME"],
                ),
                "receipt",
                contact=contact,
                changes=changes,
            )
            count += 1
    db.session.commit()
    return count


def page_changes(contact: Contact, since: datetime) -> list[ConsentEvent]:
    events = db.session.execute(
        db.select(ConsentEvent)
        .options(joinedload(ConsentEvent.mailing_list))
        .where(
            ConsentEvent.contact_id == contact.id,
            ConsentEvent.channel == "preference_page",
            ConsentEvent.occurred_at >= since,
        )
        .order_by(ConsentEvent.id)
    ).scalars()
    return list(events)
