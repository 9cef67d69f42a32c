"""Ask once before implied consent ends: "keep receiving Market Insights?".

Sending them is an explicit act (``flask send-reconfirmations``); each consent
is asked at most once (``Subscription.reconfirmation_sent_at``), and a new
consent (a later purchase placed by an import) may be asked again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import gettext as _

from . import languages, mailer, tokens
from .consent import IMPLIED_MONTHS
from .extensions import db
from .invitations import may_invite
from .models import SUBSCRIBED, OutboxMessage, Subscription, utcnow


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


def queue_reconfirmation(subscription: Subscription) -> OutboxMessage:
    """ "Keep receiving?": asked once before implied consent ends."""
    subscription.reconfirmation_sent_at = utcnow()
    token = tokens.sign(tokens.RECONFIRM, subscription.contact, l=subscription.mailing_list.slug)
    return mailer.queue_for(
        subscription,
        "reconfirmation",
        lambda: _("Keep receiving %(list)s?", list=languages.list_name(subscription.mailing_list)),
        subscription=subscription,
        keep_url=tokens.public_url("asking.keep_page", token=token),
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
            queue_reconfirmation(subscription)
            queued += 1
    return queued
