"""Double opt-in: the email that asks a contact to confirm a list they said yes to.

``consent.opt_in`` decides to send it; this module composes it and hands it
to the outbox, in the caller's transaction.
"""

from __future__ import annotations

from . import mailer, tokens
from .models import OutboxMessage, Subscription


def queue_confirmation(subscription: Subscription) -> OutboxMessage:
    """Ask the contact to confirm a pending subscription, at the address it would go to."""
    contact, mailing_list = subscription.contact, subscription.mailing_list
    token = tokens.sign(tokens.CONFIRM, contact, l=mailing_list.slug)
    return mailer.queue(
        "confirmation",
        contact.deliver_to(mailing_list, subscription),
        f"Please confirm: {mailing_list.name}",
        "confirmation",
        contact=contact,
        mailing_list=mailing_list,
        headers=mailer.list_headers(contact, mailing_list),
        mailing_list_=mailing_list,
        confirm_url=tokens.public_url("confirmation.confirm_page", token=token),
    )
