"""Invitations: the one polite question an invited contact gets for a list.

Sending them is an explicit act (a command or an admin action), never a side
effect of an import, and never repeated: ``invited_at`` records that it went.
"""

from __future__ import annotations

from . import mailer
from .extensions import db
from .models import BUSINESS, BUSINESS_DECLINED, INVITED, MailingList, Subscription
from .suppression import suppressed_address


def may_invite(subscription: Subscription) -> bool:
    """Not for erased contacts, erased addresses, or someone who declined business mail."""
    contact = subscription.contact
    if contact.erased_at is not None:
        return False
    if (
        subscription.mailing_list.audience == BUSINESS
        and contact.business_contact == BUSINESS_DECLINED
    ):
        return False
    address = mailer.delivery_address(subscription)
    return address is not None and not suppressed_address(address)


def send_invitations(mailing_list: MailingList) -> int:
    """Queue one invitation to each invited contact of the list not yet asked.

    Returns how many were queued; the caller commits. Rows are claimed with
    FOR UPDATE SKIP LOCKED, so two runs at once never invite anyone twice.
    """
    due = db.session.execute(
        db.select(Subscription)
        .where(
            Subscription.list_id == mailing_list.id,
            Subscription.state == INVITED,
            Subscription.invited_at.is_(None),
        )
        .order_by(Subscription.id)
        .with_for_update(skip_locked=True)
    ).scalars()
    queued = 0
    for subscription in list(due):
        if may_invite(subscription):
            mailer.queue_invitation(subscription)
            queued += 1
    return queued
