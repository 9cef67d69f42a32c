"""Ask once before implied consent ends: "keep receiving Market Insights?".

Sending them is an explicit act (``flask send-reconfirmations``); each consent
is asked at most once (``Subscription.reconfirmation_sent_at``), and a new
consent (a later purchase placed by an import) may be asked again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from . import mailer
from .consent import IMPLIED_MONTHS
from .extensions import db
from .invitations import may_invite
from .models import SUBSCRIBED, Subscription, utcnow


def due(days_before: int, now: datetime | None = None):
    """Implied consents that end within ``days_before`` days and were not asked yet."""
    now = now or utcnow()
    return db.select(Subscription).where(
        Subscription.state == SUBSCRIBED,
        Subscription.basis.in_(list(IMPLIED_MONTHS)),
        Subscription.expires_at > now,
        Subscription.expires_at <= now + timedelta(days=days_before),
        Subscription.reconfirmation_sent_at.is_(None),
    )


def send_reconfirmations(days_before: int = 30, now: datetime | None = None) -> int:
    """Queue one "keep receiving?" message per consent ending within the window.

    Returns how many were queued; the caller commits. Rows are claimed with
    FOR UPDATE SKIP LOCKED, so two runs at once never ask anyone twice.
    Erased contacts, erased addresses and declined business mail are skipped
    (and stay unasked).
    """
    rows = db.session.execute(
        due(days_before, now).order_by(Subscription.id).with_for_update(skip_locked=True)
    ).scalars()
    queued = 0
    for subscription in list(rows):
        if may_invite(subscription):
            mailer.queue_reconfirmation(subscription)
            queued += 1
    return queued
