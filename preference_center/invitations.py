"""Invitations: the one polite question an invited contact gets for a list.

Sending them is an explicit act (a command or an admin action), never a side
effect of an import, and never repeated: ``invited_at`` records that it went.
Where the law treats an emailed request for consent as marketing in its own
right, the rulebook (``consent.invitation_refusal``) says so and nothing is sent.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from flask import current_app
from flask_babel import gettext as _

from . import consent, languages, mailer, tokens
from .consent import declines_business_mail
from .extensions import db
from .models import INVITED, MailingList, OutboxMessage, Subscription, utcnow
from .suppression import suppressed_address


def may_invite(subscription: Subscription) -> bool:
    """Not for erased contacts, erased addresses, or someone who declined business mail."""
    contact, mailing_list = subscription.contact, subscription.mailing_list
    if contact.erased_at is not None or declines_business_mail(contact, mailing_list):
        return False
    address = contact.deliver_to(mailing_list, subscription)
    return address is not None and not suppressed_address(address)


def queue_invitation(subscription: Subscription) -> OutboxMessage:
    """The one polite question an invited contact ever gets for a list.

    Its "Yes" link opens a page with one button that subscribes at once.
    """
    subscription.invited_at = utcnow()
    token = tokens.sign(
        tokens.INVITATION_YES, subscription.contact, l=subscription.mailing_list.slug
    )
    return mailer.queue_for(
        subscription,
        "invitation",
        lambda: _(
            "May %(sender)s send you %(list)s?",
            sender=current_app.config["SENDER_NAME"],
            list=languages.list_name(subscription.mailing_list),
        ),
        subscription=subscription,
        yes_url=tokens.public_url("asking.invitation_page", token=token),
    )


@dataclass
class InvitationRun:
    """What ``send_invitations`` did: how many it queued, and who it skipped under which rule."""

    queued: int = 0
    # The rule (as ``consent.invitation_refusal`` words it) → how many contacts.
    skipped: Counter[str] = field(default_factory=Counter)


def ask_in_person(subscription: Subscription) -> str | None:
    """The rule that forbids inviting this subscription by email, if one does."""
    address = subscription.contact.deliver_to(subscription.mailing_list, subscription)
    return consent.invitation_refusal(subscription, address) if address else None


def send_invitations(mailing_list: MailingList) -> InvitationRun:
    """Queue one invitation to each invited contact of the list not yet asked,
    where an emailed invitation is lawful for that contact.

    Returns what was queued and what was skipped by which rule; the caller
    commits. Rows are claimed with FOR UPDATE SKIP LOCKED, so two runs at once
    never invite anyone twice. A skipped contact stays invited and un-asked:
    the admin sees them as "ask in person".
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
    run = InvitationRun()
    for subscription in list(due):
        if not may_invite(subscription):
            continue
        refusal = ask_in_person(subscription)
        if refusal is not None:
            run.skipped[refusal] += 1
            continue
        queue_invitation(subscription)
        run.queued += 1
    return run
