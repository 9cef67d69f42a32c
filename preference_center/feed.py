"""The consent log as a feed, in id order, for API readers and webhooks.

Event ids come from a sequence on PostgreSQL, and a transaction that took id
10 may commit after one that took id 11. A reader that moved past 11 would
never see 10. So the feed stops at a gap in the ids until the event after the
gap is ``EVENT_SETTLE_SECONDS`` old: by then the transaction holding the
missing id has committed (and the id shows up) or rolled back (and it never
will). Writes are short, so the default of 10 seconds is generous. On SQLite
writers are serialised and ids are assigned in commit order.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app

from .extensions import db
from .ledger import format_time
from .models import ConsentEvent, Contact, MailingList, utcnow

DEFAULT_SETTLE_SECONDS = 10

_COLUMNS = (
    ConsentEvent.id,
    Contact.public_id.label("contact"),
    MailingList.slug.label("list"),
    ConsentEvent.action,
    ConsentEvent.from_state,
    ConsentEvent.to_state,
    ConsentEvent.basis,
    ConsentEvent.source,
    ConsentEvent.channel,
    ConsentEvent.actor,
    ConsentEvent.occurred_at,
    ConsentEvent.notice_version,
    ConsentEvent.jurisdiction,
    ConsentEvent.evidence,
    ConsentEvent.request_id,
    ConsentEvent.personal_digest,
    ConsentEvent.prev_hash,
    ConsentEvent.hash,
)


def as_dict(row) -> dict:
    """The public shape of one event (no IP, user agent or free-text detail)."""
    event = row._asdict()
    event["occurred_at"] = format_time(row.occurred_at)
    return event


def events_after(after_id: int, limit: int) -> list:
    """Up to ``limit`` committed events with id > ``after_id``, in id order, gaps settled."""
    rows = db.session.execute(
        db.select(*_COLUMNS)
        .join(Contact, Contact.id == ConsentEvent.contact_id)
        .outerjoin(MailingList, MailingList.id == ConsentEvent.list_id)
        .where(ConsentEvent.id > after_id)
        .order_by(ConsentEvent.id)
        .limit(limit)
    ).all()
    settle = timedelta(
        seconds=current_app.config.get("EVENT_SETTLE_SECONDS", DEFAULT_SETTLE_SECONDS)
    )
    settled_before = utcnow() - settle
    expected = after_id + 1
    for index, row in enumerate(rows):
        if row.id != expected and row.occurred_at > settled_before:
            return rows[:index]
        expected = row.id + 1
    return rows
