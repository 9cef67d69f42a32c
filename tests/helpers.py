"""Small readers shared by the tests: what the database holds."""

from __future__ import annotations

import re

from preference_center.extensions import db
from preference_center.models import ConsentEvent, Subscription


def fresh() -> None:
    """End this thread's transaction so the next read sees other writers' commits."""
    db.session.commit()


def events_of(contact) -> list[ConsentEvent]:
    fresh()
    return list(
        db.session.execute(
            db.select(ConsentEvent).filter_by(contact_id=contact.id).order_by(ConsentEvent.id)
        ).scalars()
    )


def all_events() -> list[ConsentEvent]:
    fresh()
    return list(db.session.execute(db.select(ConsentEvent).order_by(ConsentEvent.id)).scalars())


def state_of(contact, mailing_list) -> str | None:
    fresh()
    subscription = db.session.execute(
        db.select(Subscription).filter_by(contact_id=contact.id, list_id=mailing_list.id)
    ).scalar_one_or_none()
    return subscription.state if subscription else None


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)
