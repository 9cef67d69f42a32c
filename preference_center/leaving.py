"""The optional question after leaving: why, in a few fixed reasons or one's own words.

Never required, never part of the withdrawal itself: the withdrawal is done and
logged before the question is asked. The answer is tied to the withdrawal
events of that request (one ``LeavingReason`` per event, so "everything"
counts for every list it stopped); the log itself is never updated.
"""

from __future__ import annotations

from flask_babel import lazy_gettext
from sqlalchemy import func

from . import tokens
from .extensions import db
from .models import ConsentEvent, Contact, LeavingReason, MailingList

# Labels in the language of the page that shows them (the admin area's is English).
REASONS = {
    "too_many": lazy_gettext("Too many emails"),
    "not_relevant": lazy_gettext("It is not relevant to me any more"),
    "never_asked": lazy_gettext("I never asked for it"),
    "other": lazy_gettext("Another reason"),
}
MAX_TEXT = 1000
WITHDRAWALS = ("withdraw", "dispute")


def question_url(contact: Contact, request_id: str) -> str:
    """The signed address of the question for the withdrawals of one request."""
    return tokens.public_url(
        "leaving.answer", token=tokens.sign(tokens.LEAVING_REASON, contact, r=request_id)
    )


def withdrawals_of(contact: Contact, request_id: str) -> list[ConsentEvent]:
    return list(
        db.session.execute(
            db.select(ConsentEvent)
            .where(
                ConsentEvent.contact_id == contact.id,
                ConsentEvent.request_id == request_id,
                ConsentEvent.action.in_(WITHDRAWALS),
            )
            .order_by(ConsentEvent.id)
        ).scalars()
    )


def record_reason(contact: Contact, request_id: str, reason: str | None, text: str | None) -> int:
    """Store the answer with each withdrawal of the request not answered yet.

    ``reason`` must be one of ``REASONS`` or empty; ``text`` is cut to
    ``MAX_TEXT``. Returns how many withdrawals got the answer (0 when there
    was nothing to say, or it was said already). The caller commits.
    """
    reason = reason if reason in REASONS else None
    text = (text or "").strip()[:MAX_TEXT] or None
    if reason is None and text is None:
        return 0
    events = withdrawals_of(contact, request_id)
    answered = set(
        db.session.execute(
            db.select(LeavingReason.event_id).where(
                LeavingReason.event_id.in_([e.id for e in events] or [0])
            )
        ).scalars()
    )
    stored = 0
    for event in events:
        if event.id in answered:
            continue
        db.session.add(
            LeavingReason(
                event_id=event.id,
                contact_id=contact.id,
                list_id=event.list_id,
                reason=reason,
                text=text,
            )
        )
        stored += 1
    return stored


def counts() -> list[tuple[str, str, int]]:
    """(list name, reason label, count) for the dashboard, most frequent first."""
    rows = db.session.execute(
        db.select(MailingList.name, LeavingReason.reason, func.count())
        .select_from(LeavingReason)
        .outerjoin(MailingList, MailingList.id == LeavingReason.list_id)
        .group_by(MailingList.name, LeavingReason.reason)
        .order_by(func.count().desc(), MailingList.name)
    ).all()
    return [
        (name or "(no list)", str(REASONS.get(reason, "Own words only")), count)
        for name, reason, count in rows
    ]


def forget_words(contact: Contact) -> None:
    """Erasure: the contact's own words go; the fixed reason and the count stay."""
    db.session.execute(
        db.update(LeavingReason)
        .where(LeavingReason.contact_id == contact.id)
        .values(text=None)
        .execution_options(synchronize_session="fetch")
    )
