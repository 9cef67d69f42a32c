"""The state machine: every subscription change goes through here.

Each verb changes state and appends its consent event in the caller's
transaction, so the page, the API, the CLI and the admin behave identically.
A verb that would not change anything writes nothing and returns ``False``.
"""

from __future__ import annotations

import calendar
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import ColumnElement, and_, or_, true

from . import confirmations, jurisdictions, ledger, suppression
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
    Action,
    Address,
    Basis,
    Channel,
    ConsentEvent,
    Contact,
    MailingList,
    Subscription,
    utcnow,
)

# CASL s.10(10) and s.10(13): how long implied consent lasts after its dated fact.
IMPLIED_MONTHS = {
    Basis.IMPLIED_PURCHASE: 24,
    Basis.IMPLIED_INQUIRY: 6,
    Basis.IMPLIED_NONBUSINESS: 24,
}
# CASL s.10(14): for an ongoing subscription, account or membership the clock
# starts when the relationship ends (``relationship_ended_on``).
ONGOING_BASES = frozenset({"implied_purchase", "implied_nonbusiness"})
# Bases resting on one dated fact (``basis_date``), and what that date is.
DATED_BASES = {
    "implied_purchase": "the purchase or inquiry date",
    "implied_inquiry": "the purchase or inquiry date",
    "implied_nonbusiness": "the date of the donation, volunteering or membership",
    "conspicuous_publication": "the date the published address was captured",
    "soft_opt_in": "the date of the sale or negotiation",
}
# Consent short of the contact's own confirmed yes: saying yes makes it lasting.
AFFIRMABLE = frozenset(DATED_BASES)
_URL = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)
# A source that names a network or its connections: a connection is not consent.
NETWORKING = re.compile(
    r"\b(?:network\w*|linked\s?in|xing|facebook|instagram|twitter|mastodon|viadeo|"
    r"connections?)\b",
    re.IGNORECASE,
)
EVIDENCE_RULE = (
    "To subscribe someone on their behalf, give a legal basis with evidence (what they "
    "agreed to, when and where). Without both, invite them instead."
)
SIGNUP_SOURCE = "signup form"
# How long a contact may pause a list or all business mail.
PAUSE_DAYS = (30, 90)


class ConsentError(ValueError):
    """A change the rules refuse; the message is shown to whoever asked.

    ``code`` is the stable name a door may show (the API's error code).
    """

    code = "provenance"


class NetworkingSource(ConsentError):
    """Someone from a network or its connections, on a basis other than ``none``."""

    code = "networking_source"


class BusinessDeclined(ConsentError):
    """A business list for a contact who said no to business mail."""

    code = "business_declined"


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


def system_via() -> Via:
    """The app itself acting (expiry, feedback): a fresh request id each time."""
    return Via(channel=Channel.SYSTEM, actor="system")


def is_networking_source(source: str) -> bool:
    """Whether ``source`` names a network or its connections (LinkedIn, Xing, …)."""
    return NETWORKING.search(source) is not None


def declines_business_mail(contact: Contact, mailing_list: MailingList | None = None) -> bool:
    """Whether the contact said no to business mail (and, given a list, it is business mail)."""
    if mailing_list is not None and mailing_list.audience != BUSINESS:
        return False
    return contact.business_contact == BUSINESS_DECLINED


def business_allowed_sql(mailing_list: MailingList) -> ColumnElement[bool]:
    """``not declines_business_mail(contact, mailing_list)`` as SQL, for a whole audience."""
    if mailing_list.audience != BUSINESS:
        return true()
    return Contact.business_contact != BUSINESS_DECLINED


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
    # CASL s.10(14): when an ongoing relationship ended (implied_purchase, implied_nonbusiness).
    relationship_ended_on: date | None = None

    def checked(
        self, mailing_list: MailingList, state: str, jurisdiction: str | None = None
    ) -> Provenance:
        """Return self if the rules allow it for this list, state and jurisdiction, else raise.

        ``jurisdiction`` is the contact's effective one (``None``: unknown). The
        rules, in the order they are asked: source and added_by are given; the
        basis is a known one; a networking source only invites (basis ``none``);
        ``none`` never subscribes; a personal relationship is no basis for
        business mail; a dated basis names its date, which is not in the future;
        the bases of CASL and PECR keep to their lists and evidence; and
        subscribing someone on their behalf takes a basis with evidence.
        """
        # A subscription without a basis is answered by the evidence rule below.
        required = ("source", "added_by") + (() if state == SUBSCRIBED else ("basis",))
        missing = [n for n in required if not getattr(self, n).strip()]
        if missing:
            raise ConsentError(f"Provenance is required: {', '.join(missing)} missing.")
        if self.basis and self.basis not in BASES:
            raise ConsentError(f"Unknown basis {self.basis!r}; use one of {', '.join(BASES)}.")
        if is_networking_source(self.source) and self.basis != Basis.NONE:
            raise NetworkingSource(
                f"People from a networking source ({self.source!r}) can only be invited, "
                "on basis 'none'. A connection is not consent: each gets at most one "
                "invitation, and nothing else unless they say yes."
            )
        if self.basis == Basis.NONE and state != INVITED:
            raise ConsentError(
                f"Basis 'none' can only invite: it never subscribes anyone. {EVIDENCE_RULE}"
            )
        if self.basis == Basis.PERSONAL and mailing_list.audience != PERSONAL:
            raise ConsentError(
                f"A personal relationship is no basis for the business list {mailing_list.slug!r}."
            )
        if self.basis in DATED_BASES and self.basis_date is None:
            raise ConsentError(f"Basis {self.basis!r} needs {DATED_BASES[self.basis]}.")
        problem = basis_date_problem(self.basis, self.basis_date)
        if problem:
            raise ConsentError(problem)
        self._check_relationship_end(utcnow().date())
        if self.basis == Basis.CONSPICUOUS_PUBLICATION:
            self._check_conspicuous_publication(mailing_list)
        if self.basis == Basis.SOFT_OPT_IN:
            self._check_soft_opt_in(mailing_list, jurisdiction)
        if state == SUBSCRIBED and not (self.basis and self.evidence.strip()):
            raise ConsentError(EVIDENCE_RULE)
        return self

    def _check_relationship_end(self, today: date) -> None:
        ended = self.relationship_ended_on
        if ended is None:
            return
        if self.basis not in ONGOING_BASES:
            raise ConsentError(
                "relationship_ended_on applies to an ongoing relationship "
                "(implied_purchase or implied_nonbusiness), not to basis "
                f"{self.basis!r} (CASL s.10(14))."
            )
        if ended > today:
            raise ConsentError(f"relationship_ended_on {ended.isoformat()} is in the future.")
        if self.basis_date is not None and ended < self.basis_date:
            raise ConsentError(
                f"relationship_ended_on {ended.isoformat()} is before the basis date "
                f"{self.basis_date.isoformat()}."
            )

    def _check_conspicuous_publication(self, mailing_list: MailingList) -> None:
        """CASL s.10(9)(b): only for role-relevant messages, with where and when it was found."""
        if not mailing_list.role_relevant:
            raise ConsentError(
                "CASL s.10(9)(b): a conspicuously published address allows only messages "
                f"relevant to the person's business role, and the list {mailing_list.slug!r} "
                "is not flagged role-relevant (flask --app app edit-list SLUG --role-relevant)."
            )
        if not _URL.search(self.evidence or ""):
            raise ConsentError(
                "CASL s.10(9)(b): conspicuous publication needs the address of the page where "
                "it was published (a URL in the evidence) and the capture date (basis_date)."
            )

    def _check_soft_opt_in(self, mailing_list: MailingList, jurisdiction: str | None) -> None:
        """PECR reg. 22(3): the sender's own similar products, after a sale or negotiation."""
        if jurisdiction == "CA":
            raise ConsentError(
                "CASL has no soft opt-in: a Canadian contact needs express or implied consent "
                "(s.6(1), s.10)."
            )
        if not mailing_list.similar_products:
            raise ConsentError(
                "PECR reg. 22(3): a soft opt-in allows only marketing of the sender's own "
                f"similar products, and the list {mailing_list.slug!r} is not flagged "
                "similar-products (flask --app app edit-list SLUG --similar-products)."
            )
        if not (self.evidence or "").strip():
            raise ConsentError(
                "PECR reg. 22(3)(a): a soft opt-in needs the sale or negotiation as evidence "
                "and its date (basis_date)."
            )


def basis_date_problem(
    basis: str, basis_date: date | None, today: date | None = None
) -> str | None:
    """Why ``basis_date`` cannot start implied consent, or None.

    A dated basis rests on a fact that happened (a purchase, an inquiry, a
    donation, a capture, a sale): one dated in the future would never expire
    (and 9999-12-31 has no end date at all).
    """
    if basis not in DATED_BASES or basis_date is None:
        return None
    if basis_date > (today or utcnow().date()):
        return f"basis_date {basis_date.isoformat()} is in the future"
    return None


def add_months(day: date, months: int) -> date:
    """``day`` plus calendar months, clamped to the end of a shorter month."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def implied_expiry(
    basis: str, basis_date: date | None, relationship_ended_on: date | None = None
) -> datetime | None:
    """When implied consent ends: the start of the day 6 or 24 months on.

    The clock runs from ``basis_date``, or for an ongoing relationship from
    ``relationship_ended_on`` when it ended (CASL s.10(14)).
    """
    if basis not in IMPLIED_MONTHS or basis_date is None:
        return None
    start = basis_date
    if basis in ONGOING_BASES and relationship_ended_on is not None:
        start = max(basis_date, relationship_ended_on)
    return datetime.combine(add_months(start, IMPLIED_MONTHS[basis]), time.min)


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


def sendable_sql(now: datetime) -> ColumnElement[bool]:
    """``consent.effective_state(subscription, now) == SUBSCRIBED`` as SQL."""
    return and_(
        Subscription.state == SUBSCRIBED,
        or_(Subscription.expires_at.is_(None), Subscription.expires_at > now),
    )


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


def lock_with_subscription(
    contact: Contact, mailing_list: MailingList
) -> tuple[Contact, Subscription | None]:
    """``lock_contact`` and ``find_subscription``: the contact's row lock, and its
    subscription to the list (``None`` if it has none), both current."""
    if not _reads_under_the_lock_are_current():
        contact = lock_contact(contact)
        subscription = db.session.execute(
            db.select(Subscription)
            .where(Subscription.contact_id == contact.id, Subscription.list_id == mailing_list.id)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        return contact, subscription
    contact, subscription = db.session.execute(
        db.select(Contact, Subscription)
        .outerjoin(
            Subscription,
            (Subscription.contact_id == Contact.id) & (Subscription.list_id == mailing_list.id),
        )
        .where(Contact.id == contact.id)
        .execution_options(populate_existing=True)
    ).one()
    return contact, subscription


def lock_subscription(subscription: Subscription) -> Contact:
    """The row lock of the subscription's contact, and the subscription re-read under it
    (``lock_contact`` and ``refresh``); returns the contact."""
    if not _reads_under_the_lock_are_current():
        contact = lock_contact(subscription.contact)
        db.session.refresh(subscription)
        return contact
    contact, _current = db.session.execute(
        db.select(Contact, Subscription)
        .join(Subscription, Subscription.contact_id == Contact.id)
        .where(Subscription.id == subscription.id)
        .execution_options(populate_existing=True)
    ).one()
    return contact


def _reads_under_the_lock_are_current() -> bool:
    """Whether one statement can both lock the contact and read its subscription.

    On SQLite the transaction already holds the database's write lock (BEGIN
    IMMEDIATE), so whatever it reads is current. On PostgreSQL it cannot: a
    ``SELECT … FOR UPDATE OF contacts`` that waited for another writer re-checks
    the contact's new row, but joined rows stay as its snapshot saw them, before
    that writer committed (a subscription just inserted is missed). The
    subscription is read in a statement of its own, after the lock.
    """
    return db.session.get_bind().dialect.name == "sqlite"


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
        jurisdiction=jurisdictions.effective(contact.jurisdiction),
        evidence=evidence,
        detail=detail,
    )
    if via.channel == Channel.PREFERENCE_PAGE:
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
    return _transition_locked(
        lock_subscription(subscription), subscription, to_state, via, action, detail
    )


def _transition_locked(
    contact: Contact,
    subscription: Subscription,
    to_state: str,
    via: Via,
    action: str,
    detail: str | None = None,
) -> bool:
    """``_transition`` once the caller holds the contact's lock and a current subscription."""
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


def placement_expiry(
    mailing_list: MailingList, state: str, provenance: Provenance, jurisdiction: str | None
) -> datetime | None:
    """Check a placement on someone else's word; return when its implied consent ends.

    The rules every placement asks before looking at the contact: the
    provenance (``Provenance.checked``), a state that may be set on someone's
    behalf, and implied consent that has not already ended. Raises
    ``ConsentError`` naming the rule.
    """
    provenance.checked(mailing_list, state, jurisdiction)
    if state not in (INVITED, SUBSCRIBED):
        raise ConsentError("Only 'invited' or 'subscribed' can be set on someone's behalf.")
    expires_at = implied_expiry(
        provenance.basis, provenance.basis_date, provenance.relationship_ended_on
    )
    if state == SUBSCRIBED and expires_at is not None and expires_at <= utcnow():
        raise ConsentError(
            f"Implied consent from {provenance.basis_date:%d %b %Y} already ended on "
            f"{expires_at:%d %b %Y} (CASL s.10(10), s.10(13))."
        )
    return expires_at


def placement_refusal(
    mailing_list: MailingList,
    state: str,
    *,
    erased: bool,
    declines_business: bool,
    current: str | None,
    disputed: bool,
) -> str | None:
    """What a placement finds about the contact: ``None`` (write it), ``suppressed`` or
    ``unchanged``.

    ``erased``: the contact or one of its addresses was erased (a tombstone);
    ``current``: the effective state of its subscription to the list, if any.
    Raises ``BusinessDeclined`` for a business list the contact said no to.
    """
    if erased:
        return "suppressed"
    if declines_business:
        # Declining withdrew every business list; only the contact can undo that.
        raise BusinessDeclined(
            "This contact declined business messages: only they can choose a business list."
        )
    if current is not None:
        if current == UNSUBSCRIBED or disputed:
            return "suppressed"
        if current == state or (current in (PENDING, SUBSCRIBED) and state == INVITED):
            return "unchanged"
    return None


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
    expires_at = placement_expiry(
        mailing_list, state, provenance, jurisdictions.effective(contact.jurisdiction)
    )
    contact = lock_contact(contact)
    subscription = find_subscription(contact, mailing_list)
    refusal = placement_refusal(
        mailing_list,
        state,
        erased=contact.erased_at is not None
        or any(suppression.suppressed_address(address.email) for address in contact.addresses),
        declines_business=declines_business_mail(contact, mailing_list),
        current=effective_state(subscription) if subscription is not None else None,
        disputed=subscription is not None and subscription.disputed_at is not None,
    )
    if refusal is not None:
        return subscription, refusal
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
    subscription.relationship_ended_on = provenance.relationship_ended_on
    subscription.expires_at = expires_at
    # A new consent: asking to keep it is due again when it nears its end.
    subscription.reconfirmation_sent_at = None
    db.session.flush()
    record(
        contact,
        via,
        Action.INVITE if state == INVITED else Action.SUBSCRIBE,
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
WITHDRAWN = "withdrawn"


def opt_in(
    contact: Contact,
    mailing_list: MailingList,
    via: Via,
    *,
    evidence: str,
    source: str = "preference page",
) -> str:
    """The contact says yes to a list.

    Nothing is sendable yet: the subscription becomes ``pending`` and a
    confirmation email goes to the address the list would be delivered to.
    A forwarded manage link therefore cannot sign anyone up; only the
    confirmation does (double opt-in). Saying yes to implied consent sends
    the same confirmation, which makes it lasting.
    """
    return choose_list(contact, mailing_list, True, via, evidence=evidence, source=source)[0]


def choose_list(
    contact: Contact,
    mailing_list: MailingList,
    wanted: bool,
    via: Via,
    *,
    evidence: str = "",
    source: str = "preference page",
) -> tuple[str, Subscription | None]:
    """The contact says yes (``opt_in``) or no (``withdraw``) to one list.

    Returns what happened (``OPTED_IN``, ``RECONFIRMING``, ``WITHDRAWN`` or
    ``UNCHANGED``) and the subscription as it now stands. The contact's lock and
    the subscription are one statement; the rules are checked on what it read.
    """
    contact, subscription = lock_with_subscription(contact, mailing_list)
    if not wanted:
        if subscription is None:
            return UNCHANGED, None
        changed = _withdraw_locked(contact, subscription, via)
        return (WITHDRAWN if changed else UNCHANGED), subscription
    if mailing_list.archived_at is not None:
        raise ConsentError(_("This list is no longer offered."))
    if declines_business_mail(contact, mailing_list):
        raise BusinessDeclined(
            _("You said no to business messages. Allow business messages first, then choose lists.")
        )
    current = effective_state(subscription) if subscription else NO_SUBSCRIPTION
    if current == SUBSCRIBED and subscription.basis in AFFIRMABLE:
        confirmations.queue_confirmation(subscription)
        return RECONFIRMING, subscription
    if current in (SUBSCRIBED, PENDING):
        return UNCHANGED, subscription
    if subscription is None:
        subscription = Subscription(contact=contact, mailing_list=mailing_list, state=PENDING)
        db.session.add(subscription)
    subscription.state = PENDING
    subscription.source = source
    subscription.added_by = "you"
    subscription.added_at = utcnow()
    subscription.basis = "express"
    subscription.evidence = evidence
    subscription.basis_date = None
    subscription.relationship_ended_on = None
    subscription.expires_at = None
    subscription.confirmed_at = None
    subscription.disputed_at = None
    subscription.dispute_text = None
    subscription.paused_until = None
    db.session.flush()
    record(
        contact,
        via,
        Action.OPT_IN,
        mailing_list=mailing_list,
        from_state=current,
        to_state=PENDING,
        basis="express",
        source=subscription.source,
        evidence=evidence,
    )
    confirmations.queue_confirmation(subscription)
    return OPTED_IN, subscription


def confirm(subscription: Subscription, via: Via) -> bool:
    """The contact confirmed by the emailed link: double opt-in.

    A pending subscription becomes sendable; implied consent becomes the
    contact's own lasting yes.
    """
    lock_subscription(subscription)
    implied = subscription.state == SUBSCRIBED and subscription.basis in AFFIRMABLE
    if subscription.state != PENDING and not implied:
        return False
    subscription.basis = "double_opt_in"
    subscription.confirmed_at = utcnow()
    subscription.expires_at = None
    confirmed = f"Confirmed by email link on {subscription.confirmed_at:%d %b %Y at %H:%M} UTC"
    # What the contact saw when asking (a signup form's wording and origin) stays.
    asked = subscription.evidence if subscription.source == SIGNUP_SOURCE else ""
    subscription.evidence = f"{asked}; {confirmed}" if asked else confirmed
    # The confirmation reached the contact: the address works again.
    clear_undeliverable(subscription, via)
    if not implied:
        return _transition(subscription, SUBSCRIBED, via, Action.CONFIRM)
    record(
        subscription.contact,
        via,
        Action.AFFIRM,
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
    return _withdraw_locked(lock_subscription(subscription), subscription, via, detail)


def _withdraw_locked(
    contact: Contact, subscription: Subscription, via: Via, detail: str | None = None
) -> bool:
    changed = _transition_locked(contact, subscription, UNSUBSCRIBED, via, Action.WITHDRAW, detail)
    if changed:
        subscription.paused_until = None  # nothing left to resume
    return changed


def withdraw_everything(contact: Contact, via: Via) -> int:
    """Withdraw every list at once; returns how many changed."""
    lock_contact(contact)
    return sum(withdraw(s, via) for s in list(contact.subscriptions))


def dispute(subscription: Subscription, via: Via, words: str) -> bool:
    """ "I never agreed to this": withdraw at once and flag it for the admins."""
    words = words.strip()[:2000]
    lock_subscription(subscription)
    if subscription.disputed_at is not None:
        return False
    subscription.disputed_at = utcnow()
    subscription.dispute_text = words or None
    from_state = subscription.state
    subscription.state = UNSUBSCRIBED
    record(
        subscription.contact,
        via,
        Action.DISPUTE,
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
    via = system_via()
    return sum(_transition(s, EXPIRED, via, Action.EXPIRE) for s in list(due))


def decline_business_contact(contact: Contact, via: Via) -> int:
    """No business messages: withdraw every business list, keep personal ones.

    Writes one event per withdrawn list and one for the choice, all sharing
    the request id of ``via``. Returns the number of lists withdrawn.
    """
    contact = lock_contact(contact)
    if declines_business_mail(contact):
        return 0
    withdrawn = sum(
        withdraw(s, via) for s in list(contact.subscriptions) if s.mailing_list.audience == BUSINESS
    )
    contact.business_contact = BUSINESS_DECLINED
    record(
        contact,
        via,
        Action.DECLINE_BUSINESS,
        from_state=BUSINESS_ALLOWED,
        to_state=BUSINESS_DECLINED,
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
    record(contact, via, Action.LANGUAGE_SET, from_state=previous, to_state=language)
    return True


def allow_business_contact(contact: Contact, via: Via) -> bool:
    """Business messages allowed again; subscribes to nothing by itself."""
    contact = lock_contact(contact)
    if contact.business_contact == BUSINESS_ALLOWED:
        return False
    contact.business_contact = BUSINESS_ALLOWED
    record(
        contact, via, Action.ALLOW_BUSINESS, from_state=BUSINESS_DECLINED, to_state=BUSINESS_ALLOWED
    )
    return True


# --- deliverability: what the ESP reports about an address -----------------


def mark_undeliverable(address: Address, via: Via, reason: str, *, detail: str) -> bool:
    """Stop all mail to ``address`` (a hard bounce): may-send answers ``undeliverable``.

    Subscriptions keep their state: the contact did not withdraw, the mailbox
    failed. A new confirmation from the contact clears it (``confirm``).
    """
    contact = lock_contact(address.contact)
    db.session.refresh(address)
    if address.undeliverable_since is not None:
        return False
    address.undeliverable_since = utcnow()
    address.undeliverable_reason = reason[:200]
    record(
        contact,
        via,
        Action.UNDELIVERABLE,
        from_state="deliverable",
        to_state="undeliverable",
        detail=f"{detail}: {address.undeliverable_reason}",
    )
    return True


def count_soft_bounce(address: Address, via: Via, limit: int, *, detail: str) -> bool:
    """One more soft bounce in a row; ``limit`` of them make the address undeliverable.

    Returns True when this bounce made it undeliverable.
    """
    contact = lock_contact(address.contact)
    db.session.refresh(address)
    if address.undeliverable_since is not None:
        return False
    address.soft_bounces = (address.soft_bounces or 0) + 1
    record(contact, via, Action.SOFT_BOUNCE, detail=f"{detail}; {address.soft_bounces} in a row")
    if address.soft_bounces < limit:
        return False
    reason = f"{address.soft_bounces} soft bounces in a row"
    return mark_undeliverable(address, via, reason, detail=detail)


def count_delivery(address: Address, via: Via, *, detail: str) -> bool:
    """A delivery ends a run of soft bounces (nothing is written when there was none)."""
    if not address.soft_bounces or address.undeliverable_since is not None:
        return False
    contact = lock_contact(address.contact)
    db.session.refresh(address)
    address.soft_bounces = 0
    record(contact, via, Action.SOFT_BOUNCES_RESET, detail=detail)
    return True


def clear_undeliverable(subscription: Subscription, via: Via) -> bool:
    """The contact confirmed from the address this list goes to: mail may go there again."""
    target = subscription.contact.deliver_to(subscription.mailing_list, subscription)
    address = next((a for a in subscription.contact.addresses if a.email == target), None)
    if address is None or (address.undeliverable_since is None and not address.soft_bounces):
        return False
    was = address.undeliverable_reason
    address.undeliverable_since = None
    address.undeliverable_reason = None
    address.soft_bounces = 0
    record(
        subscription.contact,
        via,
        Action.DELIVERABLE,
        mailing_list=subscription.mailing_list,
        from_state="undeliverable" if was else "deliverable",
        to_state="deliverable",
        detail="confirmed by the contact" + (f" after: {was}" if was else ""),
    )
    return True


# --- jurisdiction: where the contact is decides what may be sent -------------

# Consent that already allows commercial email, by the law that applies.
CASL_CONSENT = frozenset(
    {"express", "double_opt_in", "implied_purchase", "implied_inquiry", "implied_nonbusiness"}
)
PECR_CONSENT = frozenset({"express", "double_opt_in", "soft_opt_in"})

CASL_INVITATION = (
    "CASL: asking for consent by email is itself a commercial message (s.1(3)); a Canadian "
    "contact may be invited only while implied consent is in force or a personal "
    "relationship exists (s.6(5)(a)). Ask in person."
)
PECR_INVITATION = (
    "PECR: an email asking an individual subscriber for marketing consent is itself direct "
    "marketing (reg. 22; the ICO's 2017 Honda and Flybe fines): only corporate subscribers, "
    "or someone whose soft opt-in or consent already allows marketing. Ask in person."
)
EPRIVACY_INVITATION = (
    "ePrivacy Art. 13: an email asking a natural person for marketing consent is itself "
    "direct marketing: only corporate subscribers, or someone whose soft opt-in or consent "
    "already allows marketing. Ask in person."
)
UNKNOWN_INVITATION = (
    "Jurisdiction unknown: whether an emailed invitation is lawful depends on where the "
    "contact is. Set DEFAULT_JURISDICTION or the contact's jurisdiction, or ask in person."
)


def set_jurisdiction(contact: Contact, code: str | None, via: Via) -> bool:
    """Record where the contact is (ISO 3166-1 alpha-2, ``None``: unknown).

    A change is logged like a preference, since it changes which rules apply.
    Raises ``jurisdictions.JurisdictionError`` for a code that is not alpha-2.
    """
    code = jurisdictions.parse(code)
    contact = lock_contact(contact)
    if contact.jurisdiction == code:
        return False
    previous = contact.jurisdiction
    contact.jurisdiction = code
    record(
        contact,
        via,
        Action.SET_JURISDICTION,
        from_state=previous or "unknown",
        to_state=code or "unknown",
    )
    return True


def set_subscriber_type(address: Address, subscriber_type: str | None, via: Via) -> bool:
    """Record whether an address is an individual's or a corporate subscriber's (PECR)."""
    subscriber_type = jurisdictions.parse_subscriber_type(subscriber_type)
    contact = lock_contact(address.contact)
    if address.subscriber_type == subscriber_type:
        return False
    previous = address.subscriber_type
    address.subscriber_type = subscriber_type
    record(
        contact,
        via,
        Action.SET_SUBSCRIBER_TYPE,
        from_state=previous or "unknown",
        to_state=subscriber_type or "unknown",
        detail=f"address {address.kind}",
    )
    return True


def _consent_in_force(contact: Contact, bases: frozenset[str], now: datetime) -> bool:
    return any(
        effective_state(s, now) == SUBSCRIBED and s.basis in bases for s in contact.subscriptions
    )


def invitation_refusal(
    subscription: Subscription, delivery_email: str, now: datetime | None = None
) -> str | None:
    """Why an emailed invitation to this subscription would be unlawful, naming the rule.

    ``None`` means it may be sent. An invitation asks for consent, which CASL
    (s.1(3)), PECR (reg. 22) and the ePrivacy Directive (Art. 13) treat as a
    marketing message in its own right; CAN-SPAM allows it with
    identification and an opt-out, which every email carries.
    """
    now = now or utcnow()
    contact, mailing_list = subscription.contact, subscription.mailing_list
    code = jurisdictions.effective(contact.jurisdiction)
    law = jurisdictions.law(code)
    if law == "CAN-SPAM":
        return None
    if law == "unknown":
        return UNKNOWN_INVITATION
    if law == "CASL":
        bases = CASL_CONSENT | {"personal"}
        if mailing_list.role_relevant:
            bases |= {"conspicuous_publication"}
        return None if _consent_in_force(contact, bases, now) else CASL_INVITATION
    if law in ("PECR", "ePrivacy"):
        address = next((a for a in contact.addresses if a.email == delivery_email), None)
        if address is not None and address.subscriber_type == jurisdictions.CORPORATE:
            return None
        if _consent_in_force(contact, PECR_CONSENT, now):
            return None
        return PECR_INVITATION if law == "PECR" else EPRIVACY_INVITATION
    return (
        f"No rule for {code} is known here, so no invitation is sent by email: "
        "invitations go where the law allows them (US; CA, GB and EU as their rules say). "
        "Ask in person."
    )


# What a refusal of "may I send?" names, by the law that applies.
SEND_RULES = {
    "CASL": "CASL s.6(1): no commercial email without express or implied consent.",
    "PECR": "PECR reg. 22: no marketing email to an individual without consent or a soft opt-in.",
    "ePrivacy": "ePrivacy Art. 13: no marketing email without prior consent or a soft opt-in.",
    "CAN-SPAM": "CAN-SPAM §7704: no commercial email after an opt-out; permission first here.",
    "other": "Permission first: no marketing email without the contact's consent.",
    "unknown": "Jurisdiction unknown: permission first, no marketing email without consent.",
}


def send_refusal_rule(jurisdiction: str | None) -> str:
    """The rule a "do not send" answer names for a contact in ``jurisdiction``."""
    return SEND_RULES[jurisdictions.law(jurisdiction)]


def accept_invitation(subscription: Subscription, via: Via, *, evidence: str) -> bool:
    """The contact pressed "Yes" on the page their invitation linked to.

    The link reached that mailbox, so this is the confirmation itself: the
    invited subscription becomes sendable at once, basis ``double_opt_in``.
    Anything but an invitation is left as it is (``False``).
    """
    contact = lock_contact(subscription.contact)
    db.session.refresh(subscription)
    mailing_list = subscription.mailing_list
    if subscription.state != INVITED:
        return False
    if mailing_list.archived_at is not None:
        raise ConsentError(_("This list is no longer offered."))
    if declines_business_mail(contact, mailing_list):
        raise ConsentError(
            "You said no to business messages. Allow business messages first, then choose lists."
        )
    subscription.basis = Basis.DOUBLE_OPT_IN
    subscription.confirmed_at = utcnow()
    subscription.basis_date = None
    subscription.expires_at = None
    subscription.evidence = evidence
    return _transition(subscription, SUBSCRIBED, via, Action.ACCEPT_INVITATION)


def paused_until(subscription: Subscription, now: datetime | None = None) -> datetime | None:
    """The end of the pause that holds this subscription now, or ``None``.

    A list is held by its own pause and, for a business list, by a pause of
    all business mail; the later end wins. A pause past its end holds nothing,
    even before ``resume_due`` records the resumption.
    """
    now = now or utcnow()
    ends = [subscription.paused_until]
    if subscription.mailing_list.audience == BUSINESS:
        ends.append(subscription.contact.business_paused_until)
    current = [end for end in ends if end is not None and end > now]
    return max(current) if current else None


def not_paused_sql(mailing_list: MailingList, now: datetime) -> ColumnElement[bool]:
    """``paused_until(subscription, now) is None`` as SQL, for a whole audience."""
    clauses = [or_(Subscription.paused_until.is_(None), Subscription.paused_until <= now)]
    if mailing_list.audience == BUSINESS:
        clauses.append(
            or_(Contact.business_paused_until.is_(None), Contact.business_paused_until <= now)
        )
    return and_(*clauses)


def _pause_end(days: int) -> datetime:
    if days not in PAUSE_DAYS:
        raise ConsentError(f"A pause lasts {' or '.join(map(str, PAUSE_DAYS))} days.")
    return datetime.combine((utcnow() + timedelta(days=days)).date(), time.min)


def pause(subscription: Subscription, days: int, via: Via) -> bool:
    """Hold a list for ``days`` (30 or 90): nothing is sent until then."""
    until = _pause_end(days)
    contact = lock_contact(subscription.contact)
    db.session.refresh(subscription)
    if effective_state(subscription) != SUBSCRIBED:
        raise ConsentError(_("Only a list you receive can be paused."))
    if subscription.paused_until == until:
        return False
    subscription.paused_until = until
    record(
        contact,
        via,
        Action.PAUSE,
        mailing_list=subscription.mailing_list,
        from_state=SUBSCRIBED,
        to_state="paused",
        basis=subscription.basis,
        detail=f"until {until:%Y-%m-%d}",
    )
    return True


def resume(subscription: Subscription, via: Via) -> bool:
    """End a list's pause now (the contact early, or the system at its date)."""
    contact = lock_contact(subscription.contact)
    db.session.refresh(subscription)
    if subscription.paused_until is None:
        return False
    subscription.paused_until = None
    record(
        contact,
        via,
        Action.RESUME,
        mailing_list=subscription.mailing_list,
        from_state="paused",
        to_state=subscription.state,
        basis=subscription.basis,
    )
    return True


def pause_business(contact: Contact, days: int, via: Via) -> bool:
    """Hold every business list for ``days``; personal lists are untouched."""
    until = _pause_end(days)
    contact = lock_contact(contact)
    if declines_business_mail(contact):
        raise ConsentError(_("You said no to business messages: there is nothing to pause."))
    if contact.business_paused_until == until:
        return False
    contact.business_paused_until = until
    record(
        contact,
        via,
        Action.PAUSE_BUSINESS,
        from_state=BUSINESS_ALLOWED,
        to_state="paused",
        detail=f"until {until:%Y-%m-%d}",
    )
    return True


def resume_business(contact: Contact, via: Via) -> bool:
    """End the pause of all business mail now."""
    contact = lock_contact(contact)
    if contact.business_paused_until is None:
        return False
    contact.business_paused_until = None
    record(contact, via, Action.RESUME_BUSINESS, from_state="paused", to_state=BUSINESS_ALLOWED)
    return True


def resume_due(now: datetime | None = None) -> int:
    """Record the resumption of every pause that has reached its date. Idempotent:
    the pause is cleared with its ``resume`` event, so it is recorded once."""
    now = now or utcnow()
    via = system_via()
    lists = db.session.execute(
        db.select(Subscription).where(
            Subscription.paused_until.is_not(None), Subscription.paused_until <= now
        )
    ).scalars()
    count = sum(resume(s, via) for s in list(lists))
    contacts = db.session.execute(
        db.select(Contact).where(
            Contact.business_paused_until.is_not(None), Contact.business_paused_until <= now
        )
    ).scalars()
    return count + sum(resume_business(c, via) for c in list(contacts))


def cadence_of(subscription: Subscription) -> str | None:
    """The cadence this subscription receives: the contact's pick or the list's default."""
    return received_cadence(subscription.cadence, subscription.mailing_list.cadence_choices)


def received_cadence(picked: str | None, choices: list[str]) -> str | None:
    """The contact's pick while the list still offers it, else the list's first cadence."""
    if picked in choices:
        return picked
    return choices[0] if choices else None


def choose_cadence(subscription: Subscription, cadence: str, via: Via) -> bool:
    """The contact picks one of the cadences the list offers."""
    contact = lock_contact(subscription.contact)
    db.session.refresh(subscription)
    choices = subscription.mailing_list.cadence_choices
    if cadence not in choices:
        raise ConsentError(_("Choose one of the cadences this list offers."))
    if effective_state(subscription) not in (SUBSCRIBED, PENDING):
        raise ConsentError(_("Choose a cadence for a list you receive."))
    if cadence_of(subscription) == cadence and subscription.cadence is not None:
        return False
    previous = cadence_of(subscription)
    subscription.cadence = cadence
    record(
        contact,
        via,
        Action.CADENCE,
        mailing_list=subscription.mailing_list,
        from_state=subscription.state,
        to_state=subscription.state,
        basis=subscription.basis,
        detail=f"{previous} → {cadence}" if previous else cadence,
    )
    return True


# --- placing many new contacts at once (imports) ------------------------------


@dataclass(frozen=True)
class NewContact:
    """Someone not yet on file, to be placed on a list on someone else's word."""

    email: str
    provenance: Provenance
    name: str | None = None
    jurisdiction: str | None = None
    subscriber_type: str | None = None
    # The language the file names (``set_language`` for a contact who chose none yet).
    language: str | None = None


def place_many(
    mailing_list: MailingList, state: str, rows: list[NewContact], via: Via
) -> list[str]:
    """``place`` for a chunk of new contacts, in a few bulk statements.

    Each row becomes a contact with its personal address, its subscription and
    the one event ``place`` would write (which starts the contact's chain), or
    nothing: the rules are ``place``'s own (``placement_expiry`` and
    ``placement_refusal``), asked of a contact that has no subscription yet,
    whose only address is the row's. Returns each row's outcome in order:
    ``created`` or ``suppressed`` (an erased address). Raises ``ConsentError``
    before anything is written if a row's provenance is refused.

    The caller gives only addresses no contact owns (``addresses.owned_addresses``)
    and has released any unverified claim on them
    (``addresses.release_unverified_claim``); known contacts go through ``place``.
    """
    now = utcnow()
    expiries = [
        placement_expiry(
            mailing_list, state, row.provenance, jurisdictions.effective(row.jurisdiction)
        )
        for row in rows
    ]
    erased = suppression.suppressed_addresses([row.email for row in rows])
    outcomes: list[str] = []
    contacts, addresses, subscriptions, events = [], [], [], []
    action = Action.INVITE if state == INVITED else Action.SUBSCRIBE
    user_agent = (via.user_agent or None) and via.user_agent[:512]
    for row, expires_at in zip(rows, expiries, strict=True):
        refusal = placement_refusal(
            mailing_list,
            state,
            erased=row.email in erased,
            declines_business=False,
            current=None,
            disputed=False,
        )
        if refusal is not None:
            outcomes.append(refusal)
            continue
        outcomes.append("created")
        provenance = row.provenance
        public_id = uuid.uuid4().hex
        event = {
            "contact_public_id": public_id,  # replaced by contact_id once inserted
            "list_id": mailing_list.id,
            "request_id": via.request_id,
            "action": action,
            "from_state": NO_SUBSCRIPTION,
            "to_state": state,
            "basis": provenance.basis,
            "source": provenance.source,
            "channel": via.channel,
            "actor": via.actor,
            "occurred_at": now,
            "ip": via.ip,
            "user_agent": user_agent,
            "notice_version": mailing_list.notice_version,
            "language": via.language,
            "jurisdiction": jurisdictions.effective(row.jurisdiction),
            "evidence": provenance.evidence,
            "detail": None,
        }
        if row.language is not None:
            # What set_language would record first on the new contact, as the importer asks.
            if row.language not in SUPPORTED:
                raise ConsentError(f"Unknown language {row.language!r}.")
            chosen = {
                **event,
                "list_id": None,
                "action": Action.LANGUAGE_SET,
                "from_state": None,
                "to_state": row.language,
                "basis": None,
                "source": None,
                "notice_version": None,
                "evidence": None,
            }
            ledger.start_chain(chosen, public_id, None)
            events.append(chosen)
            ledger.start_chain(event, public_id, mailing_list.slug, chosen["hash"])
        else:
            ledger.start_chain(event, public_id, mailing_list.slug)
        contacts.append(
            {
                "public_id": public_id,
                "name": row.name,
                "jurisdiction": row.jurisdiction,
                "language": row.language,
                "chain_head": event["hash"],
                "created_at": now,
            }
        )
        addresses.append(
            {"email": row.email, "kind": PERSONAL, "subscriber_type": row.subscriber_type}
        )
        subscriptions.append(
            {
                "list_id": mailing_list.id,
                "state": state,
                "source": provenance.source,
                "added_by": provenance.added_by,
                "added_at": provenance.added_at or now,
                "basis": provenance.basis,
                "evidence": provenance.evidence,
                "basis_date": provenance.basis_date,
                "relationship_ended_on": provenance.relationship_ended_on,
                "expires_at": expires_at,
                "reconfirmation_sent_at": None,
            }
        )
        events.append(event)
    if not contacts:
        return outcomes
    db.session.flush()  # what the session holds goes first
    ids = (
        db.session.execute(
            db.insert(Contact.__table__).returning(
                Contact.__table__.c.id, sort_by_parameter_order=True
            ),
            contacts,
        )
        .scalars()
        .all()
    )
    by_public_id = {}
    for contact_id, contact, address, subscription in zip(
        ids, contacts, addresses, subscriptions, strict=True
    ):
        address["contact_id"] = subscription["contact_id"] = contact_id
        by_public_id[contact["public_id"]] = contact_id
    for event in events:
        event["contact_id"] = by_public_id[event.pop("contact_public_id")]
    db.session.execute(db.insert(Address.__table__), addresses)
    db.session.execute(db.insert(Subscription.__table__), subscriptions)
    db.session.execute(db.insert(ConsentEvent.__table__), events)
    return outcomes
