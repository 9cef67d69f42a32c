"""Double opt-in: the email that asks a contact to confirm a list they said yes to.

``consent.opt_in`` decides to send it; this module composes it and hands it
to the outbox, in the caller's transaction.
"""

from __future__ import annotations

from flask_babel import gettext as _

from . import languages, mailer, tokens
from .models import OutboxMessage, Subscription


def queue_confirmation(subscription: Subscription) -> OutboxMessage:
    """Ask the contact to confirm a pending subscription, at the address it would go to."""
    token = tokens.sign(tokens.CONFIRM, subscription.contact, l=subscription.mailing_list.slug)
    return mailer.queue_for(
        subscription,
        "confirmation",
        lambda: _("Please confirm: %(list)s", list=languages.list_name(subscription.mailing_list)),
        confirm_url=tokens.public_url("confirmation.confirm_page", token=token),
    )
