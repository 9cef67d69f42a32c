"""The data model: contacts, addresses, lists, subscriptions and the consent log."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from .extensions import db

# Subscription states (PRODUCT.md, "Words we use").
INVITED = "invited"
PENDING = "pending"
SUBSCRIBED = "subscribed"
UNSUBSCRIBED = "unsubscribed"
EXPIRED = "expired"
STATES = (INVITED, PENDING, SUBSCRIBED, UNSUBSCRIBED, EXPIRED)
# The from-state of an event that creates a subscription.
NO_SUBSCRIPTION = "none"


class Basis(StrEnum):
    """Legal bases, as the CLI and the API spell them (members compare equal to the text)."""

    EXPRESS = "express"
    DOUBLE_OPT_IN = "double_opt_in"
    IMPLIED_PURCHASE = "implied_purchase"
    IMPLIED_INQUIRY = "implied_inquiry"
    IMPLIED_NONBUSINESS = "implied_nonbusiness"
    CONSPICUOUS_PUBLICATION = "conspicuous_publication"
    SOFT_OPT_IN = "soft_opt_in"
    PERSONAL = "personal"
    NONE = "none"


BASES = tuple(basis.value for basis in Basis)


class Channel(StrEnum):
    """How a change arrived, as the consent log spells it."""

    PREFERENCE_PAGE = "preference_page"
    ONE_CLICK = "one_click"
    EMAIL_CONFIRMATION = "email_confirmation"
    API = "api"
    ADMIN = "admin"
    IMPORT = "import"
    SYSTEM = "system"
    FEEDBACK = "feedback"
    SIGNUP_FORM = "signup_form"


class Action(StrEnum):
    """What a consent event records, as the consent log spells it."""

    INVITE = "invite"
    SUBSCRIBE = "subscribe"
    OPT_IN = "opt_in"
    CONFIRM = "confirm"
    AFFIRM = "affirm"
    WITHDRAW = "withdraw"
    DISPUTE = "dispute"
    EXPIRE = "expire"
    DECLINE_BUSINESS = "decline_business"
    ALLOW_BUSINESS = "allow_business"
    RECEIPTS_ON = "receipts_on"
    RECEIPTS_OFF = "receipts_off"
    LINKS_RESET = "links_reset"
    BUSINESS_ADDRESS_ADDED = "business_address_added"
    BUSINESS_ADDRESS_APPROVED = "business_address_approved"
    BUSINESS_ADDRESS_VERIFIED = "business_address_verified"
    BUSINESS_ADDRESS_REMOVED = "business_address_removed"
    ROUTE_BUSINESS_MAIL = "route_business_mail"
    ROUTE_LIST = "route_list"
    UNDELIVERABLE = "undeliverable"
    SOFT_BOUNCE = "soft_bounce"
    SOFT_BOUNCES_RESET = "soft_bounces_reset"
    DELIVERABLE = "deliverable"
    SET_JURISDICTION = "set_jurisdiction"
    SET_SUBSCRIBER_TYPE = "set_subscriber_type"
    ACCEPT_INVITATION = "accept_invitation"
    PAUSE = "pause"
    RESUME = "resume"
    PAUSE_BUSINESS = "pause_business"
    RESUME_BUSINESS = "resume_business"
    CADENCE = "cadence"
    LANGUAGE_SET = "language_set"


PERSONAL = "personal"
BUSINESS = "business"
AUDIENCES = (PERSONAL, BUSINESS)

BUSINESS_ALLOWED = "allowed"
BUSINESS_DECLINED = "declined"


def utcnow() -> datetime:
    """The current UTC time as a naive datetime (the database stores UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_public_id() -> str:
    return uuid.uuid4().hex


def normalise_email(email: str) -> str:
    """Trim and lower-case an address so one mailbox has one row."""
    return email.strip().lower()


class Contact(db.Model):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Opaque identifier carried in signed links; never the email, never the id.
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    name: Mapped[str | None] = mapped_column(String(200))
    # Bumped to revoke every manage link issued so far.
    token_version: Mapped[int] = mapped_column(Integer, default=1)
    business_contact: Mapped[str] = mapped_column(String(16), default=BUSINESS_ALLOWED)
    # Business lists go to the verified business address when this is true.
    business_mail_to_business_address: Mapped[bool] = mapped_column(Boolean, default=False)
    receipts_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # ISO 3166-1 alpha-2; NULL falls back to DEFAULT_JURISDICTION (unset: unknown).
    jurisdiction: Mapped[str | None] = mapped_column(String(2))
    # BCP 47 tag of the language pages and mail use (languages.SUPPORTED); None: negotiate.
    language: Mapped[str | None] = mapped_column(String(16))
    # A receipt of recent page changes is due at this time (batched, not per click).
    receipt_due_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Every business list is paused until then (the contact's "pause all").
    business_paused_until: Mapped[datetime | None] = mapped_column(DateTime)
    # Hash of the newest consent event of this contact: the head of its chain.
    chain_head: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(DateTime)

    addresses: Mapped[list[Address]] = relationship(
        back_populates="contact", order_by="Address.id", cascade="all, delete-orphan"
    )
    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="contact", order_by="Subscription.id"
    )

    @property
    def personal_address(self) -> Address | None:
        return next((a for a in self.addresses if a.kind == PERSONAL), None)

    @property
    def business_address(self) -> Address | None:
        return next((a for a in self.addresses if a.kind == BUSINESS), None)

    @property
    def primary_email(self) -> str | None:
        address = self.personal_address or (self.addresses[0] if self.addresses else None)
        return address.email if address else None

    def deliver_to(
        self, mailing_list: MailingList, subscription: Subscription | None = None
    ) -> str | None:
        """The address ``mailing_list`` goes to for this contact.

        Routing is the contact's own data, so it is read here, below every module
        that sends: business lists go to a verified business address when the
        contact routed them there; personal lists only when the contact chose so
        for that list (``addresses.py`` makes those choices).
        """
        business = self.business_address
        if business is not None and business.verified_at is not None:
            if mailing_list.audience == BUSINESS and self.business_mail_to_business_address:
                return business.email
            if subscription is not None and subscription.deliver_to_business:
                return business.email
        return self.primary_email


class Address(db.Model):
    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default=PERSONAL)
    # PECR's terms: individual or corporate; NULL is unknown and counts as individual.
    subscriber_type: Mapped[str | None] = mapped_column(String(16))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Set by a hard bounce (or a run of soft ones) the ESP reported; cleared when
    # the contact confirms from this address again. Nothing is sent here meanwhile.
    undeliverable_since: Mapped[datetime | None] = mapped_column(DateTime)
    undeliverable_reason: Mapped[str | None] = mapped_column(String(200))
    # Soft bounces in a row (a delivery resets it); SOFT_BOUNCE_LIMIT makes it undeliverable.
    soft_bounces: Mapped[int] = mapped_column(Integer, default=0)

    contact: Mapped[Contact] = relationship(back_populates="addresses")


class MailingList(db.Model):
    __tablename__ = "lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    frequency: Mapped[str] = mapped_column(String(200), default="")
    audience: Mapped[str] = mapped_column(String(16), default=BUSINESS)
    # Version of what the list promises (name, description, frequency, flags).
    notice_version: Mapped[int] = mapped_column(Integer, default=1)
    # CASL s.10(9)(b): relevant to the recipients' business role (conspicuous publication).
    role_relevant: Mapped[bool] = mapped_column(Boolean, default=False)
    # PECR reg. 22(3): the sender's own similar products and services (soft opt-in).
    similar_products: Mapped[bool] = mapped_column(Boolean, default=False)
    # The cadences a contact may pick, one per line ("every issue", "monthly digest");
    # empty: the list has one cadence and offers no choice.
    cadences: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime)

    notices: Mapped[list[ListNotice]] = relationship(
        back_populates="mailing_list", order_by="ListNotice.version"
    )
    # Loaded with the lists: the page shows many lists and each needs its wording.
    translations: Mapped[list[ListTranslation]] = relationship(
        back_populates="mailing_list",
        order_by="ListTranslation.language",
        lazy="selectin",
        cascade="all, delete-orphan",
    )

    @property
    def cadence_choices(self) -> list[str]:
        """The cadences offered, in the admin's order (the first is the default)."""
        return [line.strip() for line in (self.cadences or "").splitlines() if line.strip()]


class ListTranslation(db.Model):
    """A list's name, description and frequency in one more language."""

    __tablename__ = "list_translations"
    __table_args__ = (UniqueConstraint("list_id", "language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id"))
    language: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    frequency: Mapped[str] = mapped_column(String(200), default="")

    mailing_list: Mapped[MailingList] = relationship(back_populates="translations")


class ListNotice(db.Model):
    """What a list promised at one version: the wording a consent event names."""

    __tablename__ = "list_notices"
    __table_args__ = (UniqueConstraint("list_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id"))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    frequency: Mapped[str] = mapped_column(String(200))
    # JSON object {tag: {name, description, frequency}}: every language's wording.
    translations: Mapped[str | None] = mapped_column(Text)
    role_relevant: Mapped[bool] = mapped_column(Boolean, default=False)
    similar_products: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    mailing_list: Mapped[MailingList] = relationship(back_populates="notices")


class Subscription(db.Model):
    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("contact_id", "list_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    # Provenance: why this subscription exists.
    source: Mapped[str] = mapped_column(String(200))
    added_by: Mapped[str] = mapped_column(String(200))
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    basis: Mapped[str] = mapped_column(String(32))
    evidence: Mapped[str] = mapped_column(Text, default="")
    # The purchase or inquiry date behind an implied basis.
    basis_date: Mapped[date | None] = mapped_column(Date)
    # CASL s.10(14): an ongoing relationship's clock starts when it ends.
    relationship_ended_on: Mapped[date | None] = mapped_column(Date)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime)
    invited_at: Mapped[datetime | None] = mapped_column(DateTime)
    disputed_at: Mapped[datetime | None] = mapped_column(DateTime)
    dispute_text: Mapped[str | None] = mapped_column(Text)
    # A personal list the contact chose to receive at the business address.
    deliver_to_business: Mapped[bool] = mapped_column(Boolean, default=False)
    # Not sendable until then; resumed (and logged) by expire-consent or the contact.
    paused_until: Mapped[datetime | None] = mapped_column(DateTime)
    # One of the list's cadences; None: the list's first (its default).
    cadence: Mapped[str | None] = mapped_column(String(64))
    # When we asked whether to make implied consent lasting (asked once per consent).
    reconfirmation_sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    contact: Mapped[Contact] = relationship(back_populates="subscriptions")
    mailing_list: Mapped[MailingList] = relationship()


class ConsentEvent(db.Model):
    """One append-only row per change; hash-chained per contact.

    No code path deletes one, and the only update is erasure's minimisation
    (the personal fields and the salt set to NULL); the database triggers of
    the migrations refuse anything else.
    """

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_contact", "contact_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    list_id: Mapped[int | None] = mapped_column(ForeignKey("lists.id"))
    # Events written by one request share an id (e.g. "no business contact").
    request_id: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    basis: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    notice_version: Mapped[int | None] = mapped_column(Integer)
    # The contact's jurisdiction when the event was written (NULL: unknown).
    jurisdiction: Mapped[str | None] = mapped_column(String(2))
    # The language the contact saw (BCP 47); hashed when set, so older events keep theirs.
    language: Mapped[str | None] = mapped_column(String(16))
    evidence: Mapped[str | None] = mapped_column(Text)
    # Free detail: the contact's own words, an address change, a reason.
    detail: Mapped[str | None] = mapped_column(Text)
    # The hash covers ip, user_agent, evidence and detail only through this
    # salted digest, so erasure can null them (and the salt) and keep the chain.
    personal_salt: Mapped[str | None] = mapped_column(String(32))
    personal_digest: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    contact: Mapped[Contact] = relationship()
    mailing_list: Mapped[MailingList | None] = relationship()


class LeavingReason(db.Model):
    """Why someone left, if they chose to say: tied to one withdrawal event.

    The event log is append-only, so the answer lives here, one row per
    withdrawal event of the request it answers. Erasure nulls ``text``.
    """

    __tablename__ = "leaving_reasons"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("consent_events.id"), unique=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    list_id: Mapped[int | None] = mapped_column(ForeignKey("lists.id"), index=True)
    reason: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    mailing_list: Mapped[MailingList | None] = relationship()


class OutboxMessage(db.Model):
    """An email queued in the transaction of the change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "sent_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    list_id: Mapped[int | None] = mapped_column(ForeignKey("lists.id"))
    to_email: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    # JSON object of extra headers (List-Unsubscribe and friends).
    headers_json: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Set when the message failed for good (a permanent refusal, or too many tries).
    failed_at: Mapped[datetime | None] = mapped_column(DateTime)


class ApiKey(db.Model):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)


class AdminUser(db.Model):
    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default="admin")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Part of the id kept in the session cookie; bumped at logout and at a
    # password change, so every copy of an older session stops working.
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    # Flask-Login's user protocol.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"


class LoginThrottle(db.Model):
    """Failed admin logins for one key (an address's hash, or an IP)."""

    __tablename__ = "login_throttles"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    # The next attempt for this key waits until then.
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime)
    last_failure_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AdminAction(db.Model):
    """Who did what in the admin area or the CLI (exports, list edits, …)."""

    __tablename__ = "admin_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    admin_id: Mapped[int | None] = mapped_column(ForeignKey("admin_users.id"))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    # JSON object describing the action (filters, counts, reason, …).
    detail: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class ImportJob(db.Model):
    """A contact file uploaded in the admin area, imported in the background.

    The upload is kept here until the import ends, so any process can run it
    (admin/import_jobs.py); ``rows_read`` and ``heartbeat_at`` are written beside
    the import's own transaction while it runs (on SQLite, in a file next to the
    database: the import holds SQLite's one write lock until it commits).
    """

    __tablename__ = "import_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admin_users.id"))
    list_slug: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(200))
    basis: Mapped[str] = mapped_column(String(32))
    added_by: Mapped[str] = mapped_column(String(200))
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    skip_invalid: Mapped[bool] = mapped_column(Boolean, default=False)
    filename: Mapped[str] = mapped_column(String(255))
    # The uploaded bytes; dropped once the import has ended for good.
    data: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    size: Mapped[int] = mapped_column(Integer, default=0)
    # queued, running, done, refused or failed (interrupted: running or queued
    # with a stale heartbeat, shown as such and never written by a read).
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    # Bumped by every claim: a runner whose attempt is no longer the job's stops.
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_estimate: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    # JSON: the counts and the first rejected rows (admin/import_jobs.py).
    summary: Mapped[str | None] = mapped_column(Text)
    # Why the file was refused, or that the run failed.
    message: Mapped[str | None] = mapped_column(Text)

    admin: Mapped[AdminUser] = relationship()


class Webhook(db.Model):
    """A receiver of consent events. Delivery follows the log by event id, so
    nothing is lost while the receiver is down and order is kept."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The id of the last consent event delivered (0: none yet).
    last_event_id: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_delivered_at: Mapped[datetime | None] = mapped_column(DateTime)


class IdempotencyKey(db.Model):
    """A stored API response, replayed when a client retries with the same key."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("api_key_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Suppression(db.Model):
    """What is left of an erased address: a keyed hash, the scope and the date,
    so the address can never be re-added to marketing lists."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("email_hash", "scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), index=True)
    scope: Mapped[str] = mapped_column(String(32), default="all")
    reason: Mapped[str] = mapped_column(String(64), default="erasure")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ProviderEvent(db.Model):
    """An ESP feedback event already acted on: its provider and its own id.

    Providers retry and batch; a second delivery of the same event finds its
    row here and changes nothing.
    """

    __tablename__ = "provider_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
