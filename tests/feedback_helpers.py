"""Shared by the feedback tests: a contact on business and personal lists."""

from __future__ import annotations

from helpers import events_of, state_of

from preference_center.extensions import db
from preference_center.models import Address, ProviderEvent


def feedback_events(contact):
    return [e for e in events_of(contact) if e.channel == "feedback"]


def address(email: str) -> Address:
    db.session.commit()
    return db.session.execute(db.select(Address).filter_by(email=email)).scalar_one()


def provider_events() -> list[ProviderEvent]:
    db.session.commit()
    return list(db.session.execute(db.select(ProviderEvent)).scalars())


__all__ = ["address", "feedback_events", "provider_events", "state_of"]
