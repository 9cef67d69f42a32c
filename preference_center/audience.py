"""The audience of a list: everyone who may be sent it right now, as one stream.

Exactly the contacts for whom ``may_send.check`` answers allowed at their
deliver-to address: the query is built from the SQL forms of the same rules
(``consent.sendable_sql``, ``business_allowed_sql``, ``not_paused_sql``, the address
clauses in ``may_send``), and tests/test_audience.py holds the
two equal on every state. The rows come from one snapshot (a read-only
REPEATABLE READ transaction on PostgreSQL, a WAL read transaction on SQLite),
through a server-side cursor in contact-id order, so memory stays flat and a
very large list can be resumed after the last contact received.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import Select, and_, case, or_
from sqlalchemy.orm import aliased

from . import jurisdictions, languages, tokens
from .consent import business_allowed_sql, not_paused_sql, received_cadence, sendable_sql
from .database import read_only_connection
from .extensions import db
from .ledger import format_time
from .log_export import neutralise
from .may_send import (
    delivers_to_business_sql,
    first_business_address_id_sql,
    primary_address_id_sql,
)
from .models import PERSONAL, Address, Contact, MailingList, Subscription, utcnow
from .sender import ONE_CLICK

FORMATS = ("ndjson", "csv")
FIELDS = (
    "email",
    "contact",
    "name",
    "basis",
    "expires_at",
    "jurisdiction",
    "cadence",
    "language",
    "manage_url",
    "unsubscribe_url",
    "list_unsubscribe",
    "list_unsubscribe_post",
)
# The cells that hold text from outside (an address, a name, a list's cadence):
# only these need the spreadsheet formula guard; the rest are ids, dates and our URLs.
_TEXT = tuple(FIELDS.index(name) for name in ("email", "name", "cadence"))
# Rows fetched from the cursor at a time, and rows per chunk written out.
BATCH = 1000
CHUNK_ROWS = 200


class BadCursor(ValueError):
    """``after`` names no contact this server gave out."""


def find_list(slug: str) -> MailingList | None:
    return db.session.execute(db.select(MailingList).filter_by(slug=slug)).scalar_one_or_none()


def audience_select(mailing_list: MailingList, now: datetime, after_id: int = 0) -> Select:
    """Core select of (contact id, public id, token version, name, jurisdiction, language,
    deliver-to, basis, expiry, cadence)."""
    # The two addresses ``deliver_to`` chooses between, joined by contact (an index
    # lookup each); a join on the chosen id itself would scan addresses per row.
    business, primary = aliased(Address), aliased(Address)
    to_business = delivers_to_business_sql(mailing_list, business)
    return (
        db.select(
            Contact.id,
            Contact.public_id,
            Contact.token_version,
            Contact.name,
            Contact.jurisdiction,
            Contact.language,
            case((to_business, business.email), else_=primary.email).label("email"),
            Subscription.basis,
            Subscription.expires_at,
            Subscription.cadence,
        )
        .select_from(Subscription)
        .join(Contact, Contact.id == Subscription.contact_id)
        .outerjoin(
            business,
            and_(business.contact_id == Contact.id, business.id == first_business_address_id_sql()),
        )
        .join(
            primary,
            and_(primary.contact_id == Contact.id, primary.id == primary_address_id_sql()),
        )
        .where(
            Subscription.list_id == mailing_list.id,
            Contact.id > after_id,
            Contact.erased_at.is_(None),
            sendable_sql(now),
            business_allowed_sql(mailing_list),
            not_paused_sql(mailing_list, now),
            case(
                (to_business, business.undeliverable_since), else_=primary.undeliverable_since
            ).is_(None),
            # An address nobody has verified belongs to nobody (addresses.identifies_contact).
            or_(to_business, primary.kind == PERSONAL, primary.verified_at.is_not(None)),
        )
        .order_by(Contact.id)
    )


def recipients(
    mailing_list: MailingList, *, after: str | None = None, now: datetime | None = None
) -> Iterator[dict]:
    """One dict per recipient (the ``FIELDS``), in contact order, from one snapshot.

    ``after`` is the ``contact`` of the last row received: the stream goes on
    with the next contact. Raises ``BadCursor`` (before the first row) when
    no contact has that public id.
    """
    now = now or utcnow()
    slug = mailing_list.slug
    with read_only_connection(db.engine) as connection:
        after_id = 0
        if after:
            after_id = connection.execute(
                db.select(Contact.id).where(Contact.public_id == after)
            ).scalar_one_or_none()
            if after_id is None:
                raise BadCursor(after)
        statement = audience_select(mailing_list, now, after_id)
        result = connection.execution_options(yield_per=BATCH).execute(statement)
        try:
            choices, language = mailing_list.cadence_choices, languages.default()
            links = (
                tokens.link_maker(tokens.MANAGE, "preferences.page"),
                tokens.link_maker(tokens.UNSUBSCRIBE, "unsubscribe.one_click", l=slug),
            )
            yield from (_row(row, links, choices, language) for row in result)
        finally:
            result.close()  # also when the reader stops early: the server-side cursor goes


def _row(row, links: tuple, cadences: list[str], default_language: str) -> dict:
    # The links read only public_id and token_version, which the row has.
    manage_url, unsubscribe_link = links
    unsubscribe_url = unsubscribe_link(row)
    return {
        "email": row.email,
        "contact": row.public_id,
        "name": row.name,
        "basis": row.basis,
        "expires_at": format_time(row.expires_at) if row.expires_at else None,
        "jurisdiction": jurisdictions.effective(row.jurisdiction),
        "cadence": received_cadence(row.cadence, cadences),
        # The contact's language, else DEFAULT_LANGUAGE, as the consent answer says.
        "language": row.language or default_language,
        "manage_url": manage_url(row),
        "unsubscribe_url": unsubscribe_url,
        "list_unsubscribe": f"<{unsubscribe_url}>",
        "list_unsubscribe_post": ONE_CLICK,
    }


def ndjson(rows: Iterator[dict]) -> Iterator[str]:
    """One JSON object a line; the first row goes out on its own, at once."""
    lines: list[str] = []
    for count, row in enumerate(rows, 1):
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
        if count == 1 or len(lines) == CHUNK_ROWS:
            yield "".join(lines)
            lines.clear()
    if lines:
        yield "".join(lines)


def csv_text(rows: Iterator[dict]) -> Iterator[str]:
    """A header line, then one line a recipient (cells safe for spreadsheets)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(FIELDS)
    for count, row in enumerate(rows, 1):
        cells = [row[name] for name in FIELDS]
        for index in _TEXT:
            cells[index] = neutralise(cells[index])
        writer.writerow(cells)
        if count == 1 or count % CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def render(format: str, rows: Iterator[dict]) -> Iterator[str]:
    if format == "csv":
        return csv_text(rows)
    if format == "ndjson":
        return ndjson(rows)
    raise ValueError(f"Unknown format {format!r}; use one of {', '.join(FORMATS)}.")
