"""The state machine: every subscription change goes through here.

Each verb changes state and appends its consent event in the caller's
transaction, so the page, the API, the CLI and the admin behave identically.
A verb that would not change anything writes nothing and returns ``False``.
"""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from flask import current_app
from flask_babel import gettext as _

from . import ledger, mailer, suppression
from .extensions import db
from .languages import SUPPORTED
from .models import (
    BASES,
    BUSINESS,
    BUSINESS_ALLOWED,
    BUSINESS_DECLINED,
    EXPIRED,
    INVITED,
    NO_SUBSCRIPTION,
    PENDING,
    PERSONAL,
    SUBSCRIBED,
    UNSUBSCRIBED,
    ConsentEvent,
    Contact,
    MailingList,
    Subscription,
    utcnow,
)

IMPLIED_MONTHS = {"implied_purchase": 24, "implied_inquiry": 6}
SENDABLE = frozenset({SUBSCRIBED})


class ConsentError(ValueError):
    """A change the rules refuse; the message is shown to whoever asked."""


@dataclass(frozen=True)
class Via:
    """How a change arrives: channel, actor and the request's fingerprint."""

    channel: str
    actor: str
    ip: str | None = None
    user_agent: str | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # The language the contact saw when they acted (BCP 47), recorded on each event.
    language: str | None = None


SYSTEM = Via(channel="system", actor="system")


@dataclass(frozen=True)
class Provenance:
    """Why a subscription exists. Every door that creates one must give it."""

    source: str
    added_by: str
    basis: str
    evidence: str = ""
    basis_date: date | None = None
    # When the sender added the person, if earlier than this write (imports, demo).
    added_at: datetime | None = None

    def checked(self, mailing_list: MailingList, state: str) -> Provenance:
        """Return self if the rules allow it for this list and state, else raise."""
        missing = [n for n in ("source", "added_by", "basis") if not getattr(self, n).strip()]
        if missing:
            raise ConsentError(f"Provenance is required: {', '.join(missing)} missing.")
        if self.basis not in BASES:
            raise ConsentError(f"Unknown basis {self.basis!r}; use one of {', '.join(BASES)}.")
        if self.basis == "none" and state != INVITED:
            raise ConsentError("Basis 'none' can only invite: it never subscribes anyone.")
        if self.basis == "personal" and mailing_list.audience != PERSONAL:
            raise ConsentError(
                f"A personal relationship is no basis for the business list {mailing_list.slug!r}."
            )
        if self.basis in IMPLIED_MONTHS and self.basis_date is None:
            raise ConsentError(f"Basis {self.basis!r} needs the purchase or inquiry date.")
        return self


def add_months(day: date, months: int) -> date:
    """``day`` plus calendar months, clamped to the end of a shorter month."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def implied_expiry(basis: str, basis_date: date | None) -> datetime | None:
    """When implied consent ends: the start of the day 6 or 24 months on."""
    if basis not in IMPLIED_MONTHS or basis_date is None:
        return None
    return datetime.combine(add_months(basis_date, IMPLIED_MONTHS[basis]), time.min)


def effective_state(subscription: Subscription, now: datetime | None = None) -> str:
    """The state right now: implied consent past its end reads as expired."""
    now = now or utcnow()
    if (
        subscription.state == SUBSCRIBED
        and subscription.expires_at is not None
        and subscription.expires_at <= now
    ):
        return EXPIRED
    return subscription.state


def lock_contact(contact: Contact) -> Contact:
    """Serialise writers of one contact: a row lock on PostgreSQL.

    On SQLite every write transaction starts with BEGIN IMMEDIATE (see
    ``database.py``), which serialises writers as a whole.
    """
    return db.session.execute(
        db.select(Contact)
        .where(Contact.id == contact.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def record(
    contact: Contact,
    via: Via,
    action: str,
    *,
    mailing_list: MailingList | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    basis: str | None = None,
    source: str | None = None,
    evidence: str | None = None,
    detail: str | None = None,
) -> ConsentEvent:
    """Append one consent event to ``contact``'s chain."""
    event = ConsentEvent(
        list_id=mailing_list.id if mailing_list else None,
        request_id=via.request_id,
        action=action,
        from_state=from_state,
        to_state=to_state,
        basis=basis,
        source=source,
        channel=via.channel,
        actor=via.actor,
        occurred_at=utcnow(),
        ip=via.ip,
        user_agent=(via.user_agent or None) and via.user_agent[:512],
        notice_version=mailing_list.notice_version if mailing_list else None,
        language=via.language,
        evidence=evidence,
        detail=detail,
    )
    if via.channel == "preference_page":
        schedule_receipt(contact, event.occurred_at)
    return ledger.append(contact, event, mailing_list.slug if mailing_list else None)


def schedule_receipt(contact: Contact, changed_at: datetime) -> None:
    """Batch page changes into one emailed receipt, due a little after the first."""
    if contact.receipts_enabled and contact.receipt_due_at is None:
        delay = timedelta(seconds=current_app.config["RECEIPT_DELAY_SECONDS"])
        contact.receipt_due_at = changed_at + delay


def _transition(
    subscription: Subscription, to_state: str, via: Via, action: str, detail: str | None = None
) -> bool:
    contact = lock_contact(subscription.contact)
    db.session.refresh(subscription)
    from_state = subscription.state
    if from_state == to_state:
        return False
    subscription.state = to_state
    record(
        contact,
        via,
        action,
        mailing_list=subscription.mailing_list,
        from_state=from_state,
        to_state=to_state,
        basis=subscription.basis,
        source=subscription.source,
        evidence=subscription.evidence,
        detail=detail,
    )
    return True


def find_subscription(contact: Contact, mailing_list: MailingList) -> Subscription | None:
    """The contact's subscription to a list, re-read so it is current after a lock."""
    return db.session.execute(
        db.select(Subscription)
        .filter_by(contact_id=contact.id, list_id=mailing_list.id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def place(
    contact: Contact,
    mailing_list: MailingList,
    state: str,
    provenance: Provenance,
    via: Via,
    *,
    detail: str | None = None,
) -> tuple[Subscription | None, str]:
    """Create or update a subscription on someone else's word (import, API, admin).

    Returns the subscription and what happened: ``created``, ``updated``,
    ``unchanged`` or ``suppressed``. An unsubscribed contact is never put back
    on a list this way: only the contact can opt in again. Nor is an erased
    contact or an erased address (a tombstone): then nothing is written and
    the subscription is ``None`` unless one exists. ``detail`` goes into the
    event (an admin's reason).
    """
    provenance.checked(mailing_list, state)
    if state not in (INVITED, SUBSCRIBED):
        raise ConsentError("Only 'invited' or 'subscribed' can be set on someone's behalf.")
    expires_at = implied_expiry(provenance.basis, provenance.basis_date)
    if state == SUBSCRIBED and expires_at is not None and expires_at <= utcnow():
        raise ConsentError(
            f"Implied consent from {provenance.basis_date:%d %b %Y} already ended on "
            f"{expires_at:%d %b %Y}."
        )
    contact = lock_contact(contact)
    subscription = find_subscription(contact, mailing_list)
    if contact.erased_at is not None or any(
        suppression.suppressed_address(address.email) for address in contact.addresses
    ):
        return subscription, "suppressed"
    if mailing_list.audience == BUSINESS and contact.business_contact == BUSINESS_DECLINED:
        # Declining withdrew every business list; only the contact can undo that.
        if subscription is not None:
            return subscription, "suppressed"
        raise ConsentError(
            "This contact declined business messages: only they can choose a business list."
        )
    if subscription is not None:
        current = effective_state(subscription)
        if current == UNSUBSCRIBED or subscription.disputed_at is not None:
            return subscription, "suppressed"
        if current == state or (current in (PENDING, SUBSCRIBED) and state == INVITED):
            return subscription, "unchanged"
    from_state = subscription.state if subscription else NO_SUBSCRIPTION
    if subscription is None:
        subscription = Subscription(contact=contact, mailing_list=mailing_list, state=state)
        db.session.add(subscription)
        outcome = "created"
    else:
        outcome = "updated"
    subscription.state = state
    subscription.source = provenance.source
    subscription.added_by = provenance.added_by
    subscription.added_at = provenance.added_at or utcnow()
    subscription.basis = provenance.basis
    subscription.evidence = provenance.evidence
    subscription.basis_date = provenance.basis_date
    subscription.expires_at = expires_at
    db.session.flush()
    record(
        contact,
        via,
        "invite" if state == INVITED else "subscribe",
        mailing_list=mailing_list,
        from_state=from_state,
        to_state=state,
        basis=provenance.basis,
        source=provenance.source,
        evidence=provenance.evidence,
        detail=detail,
    )
    return subscription, outcome


# What an opt-in did: a new pending subscription, a confirmation re-sent for
# implied consent the contact wants to keep, or nothing.
OPTED_IN, RECONFIRMING, UNCHANGED = "pending", "reconfirming", "unchanged"


def opt_in(contact: Contact, mailing_list: MailingList, via: Via, *, evidence: str) -> str:
    """The contact says yes to a list.

    Nothing is sendable yet: the subscription becomes ``pending`` and a
    confirmation email goes to the address the list would be delivered to.
    A forwarded manage link therefore cannot sign anyone up; only the
    confirmation does (double opt-in). Saying yes to implied consent sends
    the same confirmation, which makes it lasting.
    """
    if mailing_list.archived_at is not None:
        raise ConsentError(_("This list is no longer offered."))
    if mailing_list.audience == BUSINESS and contact.business_contact == BUSINESS_DECLINED:
        raise ConsentError(
            _("You said no to business messages. Allow business messages first, then choose lists.")
        )
    lock_contact(contact)
    subscription = find_subscription(contact, mailing_list)
    current = effective_state(subscription) if subscription else NO_SUBSCRIPTION
    if current == SUBSCRIBED and subscription.basis in IMPLIED_MONTHS:
        mailer.queue_confirmation(subscription)
        return RECONFIRMING
    if current in (SUBSCRIBED, PENDING):
        return UNCHANGED
    if subscription is None:
        subscription = Subscription(contact=contact, mailing_list=mailing_list, state=PENDING)
        db.session.add(subscription)
    subscription.state = PENDING
    subscription.source = "preference page"
    subscription.added_by = "you"
    subscription.added_at = utcnow()
    subscription.basis = "express"
    subscription.evidence = evidence
    subscription.basis_date = None
    subscription.expires_at = None
    subscription.confirmed_at = None
    subscription.disputed_at = None
    subscription.dispute_text = None
    db.session.flush()
    record(
        contact,
        via,
        "opt_in",
        mailing_list=mailing_list,
        from_state=current,
        to_state=PENDING,
        basis="express",
        source=subscription.source,
        evidence=evidence,
    )
    mailer.queue_confirmation(subscription)
    return OPTED_IN


def confirm(subscription: Subscription, via: Via) -> bool:
    """The contact confirmed by the emailed link: double opt-in.

    A pending subscription becomes sendable; implied consent becomes the
    contact's own lasting yes.
    """
    lock_contact(subscription.contact)
    db.session.refresh(subscription)
    implied = subscription.state == SUBSCRIBED and subscription.basis in IMPLIED_MONTHS
    if subscription.state != PENDING and not implied:
        return False
    subscription.basis = "double_opt_in"
    subscription.confirmed_at = utcnow()
    subscription.expires_at = None
    subscription.evidence = (
        f"Confirmed by email link on {subscription.confirmed_at:%d %b %Y at %H:%M} UTC"
    )
    if not implied:
        return _transition(subscription, SUBSCRIBED, via, "confirm")
    record(
        subscription.contact,
        via,
        "affirm",
        mailing_list=subscription.mailing_list,
        from_state=SUBSCRIBED,
        to_state=SUBSCRIBED,
        basis="double_opt_in",
        source=subscription.source,
        evidence=subscription.evidence,
    )
    return True


def withdraw(subscription: Subscription, via: Via, *, detail: str | None = None) -> bool:
    """Stop a list for this contact. Withdrawal is always allowed and immediate."""
    return _transition(subscription, UNSUBSCRIBED, via, "withdraw", detail)


def withdraw_everything(contact: Contact, via: Via) -> int:
    """Withdraw every list at once; returns how many changed."""
    lock_contact(contact)
    return sum(withdraw(s, via) for s in list(contact.subscriptions))


def dispute(subscription: Subscription, via: Via, words: str) -> bool:
    """ "I never agreed to this": withdraw at once and flag it for the admins."""
    words = words.strip()[:2000]
    lock_contact(subscription.contact)
    db.session.refresh(subscription)
    if subscription.disputed_at is not None:
        return False
    subscription.disputed_at = utcnow()
    subscription.dispute_text = words or None
    from_state = subscription.state
    subscription.state = UNSUBSCRIBED
    record(
        subscription.contact,
        via,
        "dispute",
        mailing_list=subscription.mailing_list,
        from_state=from_state,
        to_state=UNSUBSCRIBED,
        basis=subscription.basis,
        source=subscription.source,
        evidence=subscription.evidence,
        detail=words or None,
    )
    return True


def expire_due(now: datetime | None = None) -> int:
    """Record ``expired`` for every implied consent past its end. Idempotent."""
    now = now or utcnow()
    due = db.session.execute(
        db.select(Subscription).where(
            Subscription.state == SUBSCRIBED,
            Subscription.expires_at.is_not(None),
            Subscription.expires_at <= now,
        )
    ).scalars()
    via = Via(channel="system", actor="system")
    return sum(_transition(s, EXPIRED, via, "expire") for s in list(due))


def decline_business_contact(contact: Contact, via: Via) -> int:
    """No business messages: withdraw every business list, keep personal ones.

    Writes one event per withdrawn list and one for the choice, all sharing
    the request id of ``via``. Returns the number of lists withdrawn.
    """
    contact = lock_contact(contact)
    if contact.business_contact == BUSINESS_DECLINED:
        return 0
    withdrawn = sum(
        withdraw(s, via) for s in list(contact.subscriptions) if s.mailing_list.audience == BUSINESS
    )
    contact.business_contact = BUSINESS_DECLINED
    record(
        contact, via, "decline_business", from_state=BUSINESS_ALLOWED, to_state=BUSINESS_DECLINED
    )
    return withdrawn


def set_receipts(contact: Contact, enabled: bool, via: Via) -> bool:
    """Emailed receipts of page changes on or off (a preference, logged like one)."""
    contact = lock_contact(contact)
    if contact.receipts_enabled == enabled:
        return False
    contact.receipts_enabled = enabled
    if not enabled:
        contact.receipt_due_at = None
    state = "on" if enabled else "off"
    record(contact, via, f"receipts_{state}", to_state=state)
    return True


def set_language(contact: Contact, language: str, via: Via) -> bool:
    """The language of the contact's pages and mail (a preference, logged like one).

    ``language`` must be a supported BCP 47 tag (``languages.normalise`` makes one).
    """
    if language not in SUPPORTED:
        raise ConsentError(f"Unknown language {language!r}; use one of {', '.join(SUPPORTED)}.")
    contact = lock_contact(contact)
    if contact.language == language:
        return False
    previous, contact.language = contact.language, language
    record(contact, via, "language_set", from_state=previous, to_state=language)
    return True


def allow_business_contact(contact: Contact, via: Via) -> bool:
    """Business messages allowed again; subscribes to nothing by itself."""
    contact = lock_contact(contact)
    if contact.business_contact == BUSINESS_ALLOWED:
        return False
    contact.business_contact = BUSINESS_ALLOWED
    record(contact, via, "allow_business", from_state=BUSINESS_DECLINED, to_state=BUSINESS_ALLOWED)
    return True
