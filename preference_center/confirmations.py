"""Double opt-in: the email that asks a contact to confirm a list they said yes to.

``consent.opt_in`` decides to send it; this module composes it and hands it
to the outbox, in the caller's transaction.
"""

from __future__ import annotations

from . import mailer, tokens
from .models import OutboxMessage, Subscription


def queue_confirmation(subscription: Subscription) -> OutboxMessage:
    """Ask the contact to confirm a pending subscription, at the address it would go to."""
    token = tokens.sign(tokens.CONFIRM, subscription.contact, l=subscription.mailing_list.slug)
    return mailer.queue_for(
        subscription,
        "confirmation",
        f"Please confirm: {subscription.mailing_list.name}",
        confirm_url=tokens.public_url("confirmation.confirm_page", token=token),
    )
