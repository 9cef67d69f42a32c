"""The consent log: per-contact hash chains, appending, and verification.

Canonical form of an event (what its hash covers), documented in the README:
a JSON object of the fields in ``HASHED_FIELDS``, keys sorted, no spaces
(separators ``,`` and ``:``), non-ASCII kept as UTF-8, ``null`` for missing
values, ``occurred_at`` as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``. The hash is
``sha256(prev_hash + canonical)`` in lower-case hex, with ``prev_hash`` the
empty string for a contact's first event.

The personal fields (``PERSONAL_FIELDS``: IP, user agent, evidence, detail)
are not in the canonical form themselves. It holds their ``personal_digest``:
``sha256(personal_salt + json)`` in lower-case hex, where ``json`` is the
object of the four fields under the same rules and ``personal_salt`` is 32
random hex characters stored beside them. Erasure sets the four fields and
the salt to ``null`` and keeps the digest, so the chain still verifies while
nothing personal is left (without the salt the digest cannot be matched
against guesses). While the salt is there, verification checks the fields
against the digest, so an edited IP is still found.

``jurisdiction`` (``OPTIONAL_HASHED_FIELDS``) is in the canonical form only
when it is set: events written before it existed (and events of a contact of
unknown jurisdiction) hash exactly as they always did, so old chains verify
unchanged, while setting, changing or removing a recorded jurisdiction
changes the hash.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, Row

from .database import read_only_connection
from .extensions import db
from .models import ConsentEvent, Contact, MailingList, Subscription

HASHED_FIELDS = (
    "contact",
    "list",
    "request_id",
    "action",
    "from_state",
    "to_state",
    "basis",
    "source",
    "channel",
    "actor",
    "occurred_at",
    "notice_version",
    "personal_digest",
    "prev_hash",
)
# In the canonical form only when not null (added after chains existed), so events
# written before a field existed keep their hashes.
OPTIONAL_HASHED_FIELDS = ("jurisdiction", "language")
# What erasure removes from an event; the hash covers them through the digest.
PERSONAL_FIELDS = ("ip", "user_agent", "evidence", "detail")


def format_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _canonical_json(fields: dict[str, Any], names: Iterable[str]) -> str:
    return json.dumps(
        {name: fields.get(name) for name in names},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def canonical(fields: dict[str, Any]) -> str:
    """The exact text an event's hash is computed over."""
    present = [name for name in OPTIONAL_HASHED_FIELDS if fields.get(name) is not None]
    return _canonical_json(fields, (*HASHED_FIELDS, *present))


def personal_digest(salt: str, fields: dict[str, Any] | ConsentEvent | Row) -> str:
    """The digest of an event's personal fields that its hash covers in their place."""
    if not isinstance(fields, dict):
        fields = {name: getattr(fields, name) for name in PERSONAL_FIELDS}
    text = salt + _canonical_json(fields, PERSONAL_FIELDS)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def event_hash(fields: dict[str, Any]) -> str:
    text = (fields.get("prev_hash") or "") + canonical(fields)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hashed_fields(event: ConsentEvent | Row, contact_public_id: str, list_slug: str | None) -> dict:
    """The fields of a stored event (an ORM object or a Core row) as the hash covers them."""
    return {
        "contact": contact_public_id,
        "list": list_slug,
        "request_id": event.request_id,
        "action": event.action,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "basis": event.basis,
        "source": event.source,
        "channel": event.channel,
        "actor": event.actor,
        "occurred_at": format_time(event.occurred_at),
        "notice_version": event.notice_version,
        "jurisdiction": event.jurisdiction,
        "personal_digest": event.personal_digest,
        "prev_hash": event.prev_hash,
    } | {name: getattr(event, name) for name in OPTIONAL_HASHED_FIELDS if getattr(event, name)}


def append(contact: Contact, event: ConsentEvent, list_slug: str | None) -> ConsentEvent:
    """Chain ``event`` onto ``contact``'s log and add it to the session.

    The caller holds the contact's row lock (see ``consent.lock_contact``) so
    two writers for one contact cannot both extend the same head.
    """
    event.contact_id = contact.id
    event.personal_salt = secrets.token_hex(16)
    event.personal_digest = personal_digest(event.personal_salt, event)
    event.prev_hash = contact.chain_head
    event.hash = event_hash(hashed_fields(event, contact.public_id, list_slug))
    contact.chain_head = event.hash
    db.session.add(event)
    return event


@dataclass
class ChainProblem:
    """One thing verification found wrong: an event, a contact's head or a subscription."""

    event_id: int | None
    contact_public_id: str
    message: str
    list_slug: str | None = None

    def __str__(self) -> str:
        if self.event_id is not None:
            where = f"event {self.event_id} of contact {self.contact_public_id}"
        elif self.list_slug is not None:
            where = f"subscription of contact {self.contact_public_id} to {self.list_slug}"
        else:
            where = f"contact {self.contact_public_id}"
        return f"{where}: {self.message}"


@dataclass
class VerifyReport:
    """What ``verify_all`` checked and what it found, in the order it found it."""

    contacts_checked: int = 0
    events_checked: int = 0
    subscriptions_checked: int = 0
    problems: list[ChainProblem] = field(default_factory=list)
    # Problems beyond ``problems`` (which is capped) are only counted.
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def first_problem(self) -> ChainProblem | None:
        return self.problems[0] if self.problems else None

    def add(self, problem: ChainProblem, keep: int) -> None:
        self.problem_count += 1
        if len(self.problems) < keep:
            self.problems.append(problem)


# Event actions whose to_state is a contact-level choice, not a subscription state.
CONTACT_LEVEL_ACTIONS = frozenset({"decline_business", "allow_business"})
# A pause holds a list without changing its state (its to_state says "paused");
# the resume that ends it names the state again.
HOLDING_ACTIONS = frozenset({"pause"})


class _Peekable:
    """A stream of rows ordered by contact id, taken one contact at a time."""

    def __init__(self, rows: Iterable[Row]):
        self._rows = iter(rows)
        self._next = next(self._rows, None)

    def take(self, contact_id: int) -> Iterator[Row]:
        # Rows of lower contact ids cannot exist (foreign keys); skip them if they do.
        while self._next is not None and self._next.contact_id <= contact_id:
            row, self._next = self._next, next(self._rows, None)
            if row.contact_id == contact_id:
                yield row


def _stream(connection: Connection, statement, batch_size: int) -> Iterator[Row]:
    return iter(connection.execution_options(yield_per=batch_size).execute(statement))


def verify_all(batch_size: int = 2000, max_problems: int = 1000) -> VerifyReport:
    """Recompute every contact's chain and replay every subscription.

    Reads contacts, events and subscriptions as three streams ordered by
    contact id and walks them side by side, so memory holds one contact at a
    time however long the log is. For each contact: each event's
    ``prev_hash`` names the previous event's hash, each hash matches the
    event's fields, the head on the contact is the last event's hash, and each
    subscription's state is the ``to_state`` of the last event for that list.
    """
    report = VerifyReport()
    event = ConsentEvent.__table__.c
    contacts = db.select(Contact.id, Contact.public_id, Contact.chain_head).order_by(Contact.id)
    events = (
        db.select(*event, MailingList.slug.label("list_slug"))
        .outerjoin(MailingList, MailingList.id == event.list_id)
        .order_by(event.contact_id, event.id)
    )
    subscriptions = (
        db.select(
            Subscription.contact_id,
            Subscription.list_id,
            Subscription.state,
            MailingList.slug.label("list_slug"),
        )
        .join(MailingList, MailingList.id == Subscription.list_id)
        .order_by(Subscription.contact_id, Subscription.list_id)
    )
    with read_only_connection(db.engine) as connection:
        event_rows = _Peekable(_stream(connection, events, batch_size))
        subscription_rows = _Peekable(_stream(connection, subscriptions, batch_size))
        for contact in _stream(connection, contacts, batch_size):
            report.contacts_checked += 1
            replayed = _check_chain(contact, event_rows.take(contact.id), report, max_problems)
            for subscription in subscription_rows.take(contact.id):
                report.subscriptions_checked += 1
                _check_subscription(contact, subscription, replayed, report, max_problems)
            for slug, (_state, event_id) in replayed.items():
                report.add(
                    ChainProblem(
                        event_id,
                        contact.public_id,
                        f"events record the list {slug} but the subscription is missing",
                        slug,
                    ),
                    max_problems,
                )
    return report


def _check_chain(
    contact: Row, events: Iterator[Row], report: VerifyReport, keep: int
) -> dict[str, tuple[str, int]]:
    """Check one contact's events in order; return each list's replayed (state, last event)."""
    replayed: dict[str, tuple[str, int]] = {}
    previous_hash: str | None = None
    last_id: int | None = None
    for event in events:
        report.events_checked += 1
        if event.prev_hash != previous_hash:
            report.add(
                ChainProblem(
                    event.id,
                    contact.public_id,
                    f"prev_hash {_short(event.prev_hash)} does not link to the previous event "
                    f"({_short(previous_hash)}): an event was removed, inserted or reordered",
                    event.list_slug,
                ),
                keep,
            )
        if event_hash(hashed_fields(event, contact.public_id, event.list_slug)) != event.hash:
            report.add(
                ChainProblem(
                    event.id,
                    contact.public_id,
                    "its hash does not match its fields: the event was edited",
                    event.list_slug,
                ),
                keep,
            )
        problem = personal_problem(event)
        if problem:
            report.add(ChainProblem(event.id, contact.public_id, problem, event.list_slug), keep)
        # Link the next event to the hash as stored, so one edit is one problem.
        previous_hash, last_id = event.hash, event.id
        if (
            event.list_slug is not None
            and event.to_state is not None
            and event.action not in CONTACT_LEVEL_ACTIONS
            and event.action not in HOLDING_ACTIONS
        ):
            replayed[event.list_slug] = (event.to_state, event.id)
    if contact.chain_head != previous_hash:
        report.add(
            ChainProblem(
                last_id,
                contact.public_id,
                f"the head stored on the contact ({_short(contact.chain_head)}) is not the hash "
                f"of its last event ({_short(previous_hash)}): the newest event was removed "
                "or the head rewritten",
            ),
            keep,
        )
    return replayed


def personal_problem(event: Row) -> str | None:
    """What is wrong with an event's personal fields, if anything."""
    if event.personal_salt is not None:
        if personal_digest(event.personal_salt, event) != event.personal_digest:
            return (
                "its IP, user agent, evidence or detail do not match their digest: "
                "the event was edited"
            )
        return None
    if any(getattr(event, name) is not None for name in PERSONAL_FIELDS):
        # Erasure removes the salt with the fields; fields without a salt were put back.
        return "it has personal fields but no salt: the event was edited after erasure"
    return None


def _check_subscription(
    contact: Row,
    subscription: Row,
    replayed: dict[str, tuple[str, int]],
    report: VerifyReport,
    keep: int,
) -> None:
    """Compare one subscription with the replay of its events (and consume the replay)."""
    slug = subscription.list_slug
    if slug not in replayed:
        message = f"state {subscription.state!r} but no event records it"
    else:
        state, event_id = replayed.pop(slug)
        if state == subscription.state:
            return
        message = (
            f"state {subscription.state!r} but its events replay to {state!r} "
            f"(last event {event_id})"
        )
    report.add(ChainProblem(None, contact.public_id, message, slug), keep)


def _short(value: str | None) -> str:
    return value[:12] + "…" if value else "none"


def start_chain(
    event: dict[str, Any],
    contact_public_id: str,
    list_slug: str | None,
    prev_hash: str | None = None,
) -> dict:
    """Chain ``event`` (a row of ``consent_events`` as a dict) after ``prev_hash``.

    Adds its salt, personal digest, ``prev_hash`` and hash, exactly as
    ``append`` does; ``prev_hash`` ``None`` starts a new contact's chain, and the
    contact's head is the last event's ``hash``. For bulk inserts of contacts
    that do not exist yet (nobody else can be writing their chain).
    """
    event["personal_salt"] = secrets.token_hex(16)
    event["personal_digest"] = personal_digest(event["personal_salt"], event)
    event["prev_hash"] = prev_hash
    fields = dict(event, contact=contact_public_id, list=list_slug)
    fields["occurred_at"] = format_time(event["occurred_at"])
    event["hash"] = event_hash(fields)
    return event
