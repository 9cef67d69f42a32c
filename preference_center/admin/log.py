"""The consent log: filter, open an event, verify the chains, download an export."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask import Response, abort, render_template, request, stream_with_context, url_for
from flask_login import current_user

from .. import ledger, log_export
from ..extensions import db
from ..inputs import bounded_id
from ..models import AdminAction, ConsentEvent, Contact, MailingList, utcnow
from . import bp, record_action

PAGE_SIZE = 50
EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "ndjson": "application/x-ndjson",
}


class BadFilter(ValueError):
    """A filter that cannot be understood; the message says which."""


@dataclass
class LogFilters:
    list_slug: str = ""
    channel: str = ""
    action: str = ""
    since: date | None = None
    until: date | None = None

    @classmethod
    def from_args(cls, args) -> LogFilters:
        return cls(
            list_slug=args.get("list", "").strip(),
            channel=args.get("channel", "").strip(),
            action=args.get("action", "").strip(),
            since=parse_day(args.get("since", ""), "From"),
            until=parse_day(args.get("until", ""), "To"),
        )

    @property
    def since_at(self) -> datetime | None:
        return datetime.combine(self.since, time.min) if self.since else None

    @property
    def until_at(self) -> datetime | None:
        # "To" is inclusive: everything before the start of the next day. The
        # last day there is has no next one: no upper bound then.
        if self.until is None or self.until == date.max:
            return None
        return datetime.combine(self.until + timedelta(days=1), time.min)

    def as_args(self) -> dict[str, str]:
        args = {
            "list": self.list_slug,
            "channel": self.channel,
            "action": self.action,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
        }
        return {k: v for k, v in args.items() if v}


def parse_day(text: str, label: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadFilter(f"{label}: {text!r} is not a date (use YYYY-MM-DD).") from None


def filtered_events(filters: LogFilters, before: int | None):
    select = (
        db.select(ConsentEvent, Contact.public_id, MailingList.slug)
        .join(Contact, ConsentEvent.contact_id == Contact.id)
        .outerjoin(MailingList, ConsentEvent.list_id == MailingList.id)
        .order_by(ConsentEvent.id.desc())
        .limit(PAGE_SIZE + 1)
    )
    if filters.list_slug:
        select = select.where(MailingList.slug == filters.list_slug)
    if filters.channel:
        select = select.where(ConsentEvent.channel == filters.channel)
    if filters.action:
        select = select.where(ConsentEvent.action == filters.action)
    if filters.since_at:
        select = select.where(ConsentEvent.occurred_at >= filters.since_at)
    if filters.until_at:
        select = select.where(ConsentEvent.occurred_at < filters.until_at)
    if before:
        # Keyset paging: stays fast however deep the page.
        select = select.where(ConsentEvent.id < before)
    return db.session.execute(select).all()


def page_before() -> int | None:
    """The ``before=`` id of an older page; 400 when it names no possible row."""
    raw = request.args.get("before", "")
    if not raw:
        return None
    before = bounded_id(raw)
    if before is None:
        abort(400, description="'before' must be the id of an event (a whole number).")
    return before


def distinct(column) -> list[str]:
    return list(db.session.execute(db.select(column).distinct().order_by(column)).scalars())


def log_context(filters: LogFilters, **extra) -> dict:
    return {
        "filters": filters,
        "lists": db.session.execute(db.select(MailingList).order_by(MailingList.name))
        .scalars()
        .all(),
        "channels": distinct(ConsentEvent.channel),
        "actions": distinct(ConsentEvent.action),
        "formats": EXPORT_TYPES,
        **extra,
    }


@bp.get("/log")
def consent_log():
    """The consent log, newest first, filtered by list, channel, action and date."""
    try:
        filters = LogFilters.from_args(request.args)
    except BadFilter as error:
        return render_template(
            "admin/log/index.html", **log_context(LogFilters(), rows=[], error=str(error))
        ), 400
    before = page_before()
    rows = filtered_events(filters, before)
    older = rows[PAGE_SIZE - 1][0].id if len(rows) > PAGE_SIZE else None
    return render_template(
        "admin/log/index.html",
        **log_context(filters, rows=rows[:PAGE_SIZE], older=older, paged=bool(before)),
    )


@bp.get("/log/<int:event_id>")
def event(event_id: int):
    """One event with all its fields, and whether its hash still matches them."""
    found = db.session.execute(
        db.select(ConsentEvent, Contact, MailingList.slug)
        .join(Contact, ConsentEvent.contact_id == Contact.id)
        .outerjoin(MailingList, ConsentEvent.list_id == MailingList.id)
        .where(ConsentEvent.id == event_id)
    ).first()
    if found is None:
        abort(404, description="There is no such event.")
    consent_event, contact, slug = found
    recomputed = ledger.event_hash(ledger.hashed_fields(consent_event, contact.public_id, slug))
    return render_template(
        "admin/log/event.html",
        event=consent_event,
        contact=contact,
        slug=slug,
        fields=ledger.hashed_fields(consent_event, contact.public_id, slug),
        personal={name: getattr(consent_event, name) for name in ledger.PERSONAL_FIELDS},
        hash_matches=recomputed == consent_event.hash,
        personal_problem=ledger.personal_problem(consent_event),
    )


@bp.post("/log/verify")
def verify_log():
    """Check every hash chain and every subscription against its events."""
    report = ledger.verify_all()
    record_action(
        "verify_log",
        ok=report.ok,
        events_checked=report.events_checked,
        contacts_checked=report.contacts_checked,
        problems=report.problem_count,
    )
    db.session.commit()
    return render_template("admin/log/verify.html", report=report), 200 if report.ok else 409


@bp.get("/log/export")
def export_log():
    """Download the consent log as CSV, JSON or NDJSON, streamed; recorded as an admin action."""
    fmt = request.args.get("format", "csv")
    if fmt not in EXPORT_TYPES:
        abort(400, description=f"Unknown format {fmt!r}; use csv, json or ndjson.")
    try:
        filters = LogFilters.from_args(request.args)
    except BadFilter as error:
        abort(400, description=str(error))
    wanted = {
        "since": filters.since_at,
        "until": filters.until_at,
        "list_slug": filters.list_slug or None,
        "contact_public_id": request.args.get("contact", "").strip() or None,
    }
    bom = fmt == "csv" and request.args.get("bom") == "yes"
    # Recorded before the first byte, so a download cut short is on the record too;
    # the export module records the manifest (rows, sha256, chain heads) once it is sent.
    db.session.commit()  # end the read transaction: the record is a short write of its own
    record_action("export_log_requested", format=fmt, bom=bom, **wanted)
    db.session.commit()
    try:
        chunks = log_export.download(
            fmt,
            wanted,
            bom,
            actor=f"admin:{current_user.id} {current_user.email}",
            admin_id=current_user.id,
        )
    except log_export.ExportError as error:
        abort(400, description=str(error))
    filename = f"consent-log-{utcnow():%Y%m%dT%H%M%SZ}.{fmt}"
    response = Response(stream_with_context(chunks), content_type=EXPORT_TYPES[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/actions")
def actions():
    """The admin record: who did what in the admin area and the CLI, newest first."""
    before = page_before()
    select = db.select(AdminAction).order_by(AdminAction.id.desc()).limit(PAGE_SIZE + 1)
    if before:
        select = select.where(AdminAction.id < before)
    entries = list(db.session.execute(select).scalars())
    older = entries[PAGE_SIZE - 1].id if len(entries) > PAGE_SIZE else None
    return render_template(
        "admin/actions.html",
        entries=entries[:PAGE_SIZE],
        older=older,
        older_url=url_for("admin.actions", before=older) if older else None,
    )
