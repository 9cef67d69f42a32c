"""Erasure (GDPR Art. 17): forget the person, keep the proof and the suppression.

What goes: the name, every address, the contact's queued and sent mail, the
free text on subscriptions, and the IP, user agent, evidence and detail of
every consent event. What stays (Art. 17(3)(b) and (e), and the ICO's
"suppress, do not delete"): one tombstone per address (a keyed hash, the
scope, the date), the subscriptions withdrawn, and the events minimised; the
hash chain still verifies because events hash a digest of their personal
fields, not the fields (see ``ledger``). An ``erase`` event closes the chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import consent, leaving, suppression
from .consent import Via
from .extensions import db
from .models import ConsentEvent, Contact, OutboxMessage, utcnow

ERASE = "erase"


@dataclass(frozen=True)
class Erasure:
    """What one erasure did."""

    withdrawn: int
    tombstones: int
    events_minimised: int


def erase(contact: Contact, via: Via) -> Erasure:
    """Erase ``contact`` in the caller's transaction; the caller commits.

    Every subscription is withdrawn first through ``consent.withdraw`` (so the
    log says so), then the ``erase`` event is appended and every event of the
    contact, the new ones included, is minimised. Erasing twice does nothing
    the second time.
    """
    contact = consent.lock_contact(contact)
    if contact.erased_at is not None:
        return Erasure(0, 0, 0)
    withdrawn = consent.withdraw_everything(contact, via)
    emails = [address.email for address in contact.addresses]
    for email in emails:
        suppression.add_tombstone(email, scope=suppression.ALL)
    # The request's IP and user agent are personal too: the erase event never has them.
    consent.record(
        contact, Via(channel=via.channel, actor=via.actor, request_id=via.request_id), ERASE
    )
    db.session.flush()
    minimised = db.session.execute(
        db.update(ConsentEvent)
        .where(ConsentEvent.contact_id == contact.id)
        .values(ip=None, user_agent=None, evidence=None, detail=None, personal_salt=None)
        .execution_options(synchronize_session="fetch")
    ).rowcount
    leaving.forget_words(contact)
    for subscription in contact.subscriptions:
        subscription.evidence = ""
        subscription.dispute_text = None
    # Mail to or about the person holds the address and links: it goes too.
    db.session.execute(
        db.delete(OutboxMessage)
        .where(
            (OutboxMessage.contact_id == contact.id) | OutboxMessage.to_email.in_(emails or [""])
        )
        .execution_options(synchronize_session="fetch")
    )
    contact.addresses.clear()
    contact.name = None
    contact.business_mail_to_business_address = False
    contact.receipt_due_at = None
    contact.token_version += 1  # every link issued so far stops working
    contact.erased_at = utcnow()
    return Erasure(withdrawn=withdrawn, tombstones=len(emails), events_minimised=minimised)
