"""Export of the consent log: streamed rows, CSV/JSON/NDJSON, and a manifest.

Rows come from one streamed Core select, so memory stays flat however many
events there are. Each export is recorded as an admin action whose detail is
its manifest (row count, filters, sha256 of the bytes, the chain heads it
covers).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import case, func

from .database import read_only_connection
from .extensions import db
from .ledger import format_time
from .models import PERSONAL, Address, AdminAction, ConsentEvent, Contact, MailingList, utcnow

FORMATS = ("csv", "json", "ndjson")
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "ndjson": "application/x-ndjson",
}

# ``contact`` repeats ``contact_id`` under the name the hash uses, so every
# field of ``ledger.HASHED_FIELDS`` is in a row under its own name and an
# auditor can recompute each hash from a JSON or NDJSON export alone; with
# ``personal_salt`` (null once erased) they can also check the personal fields
# against ``personal_digest``.
EXPORT_COLUMNS = (
    "event_id",
    "occurred_at",
    "contact_id",
    "contact",
    "email",
    "list",
    "action",
    "from_state",
    "to_state",
    "basis",
    "source",
    "channel",
    "actor",
    "ip",
    "user_agent",
    "evidence",
    "notice_version",
    "jurisdiction",
    "language",
    "request_id",
    "detail",
    "personal_salt",
    "personal_digest",
    "prev_hash",
    "hash",
)
# The columns that can hold text from outside (addresses, what importers, API
# callers and browsers sent, names of actors): only these need the formula guard.
TEXT_COLUMNS = ("email", "list", "source", "actor", "ip", "user_agent", "evidence", "detail")
_TEXT = tuple(EXPORT_COLUMNS.index(name) for name in TEXT_COLUMNS)
_ID = EXPORT_COLUMNS.index("event_id")

# A spreadsheet reads a cell starting with one of these as a formula (OWASP CSV injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"
CHUNK_ROWS = 500


class ExportError(ValueError):
    """Filters the export cannot honour (unknown list or contact, bad dates)."""


def parse_time(value: str | datetime | None) -> datetime | None:
    """An ISO 8601 date or time as naive UTC; a time without an offset is taken as UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ExportError(f"{value!r} is not an ISO 8601 date or time.") from None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def stream_rows(
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    list_slug: str | None = None,
    contact_public_id: str | None = None,
    batch_size: int = 2000,
) -> Iterator[tuple]:
    """Events as tuples in ``EXPORT_COLUMNS`` order, oldest id first.

    ``since`` is inclusive, ``until`` exclusive. Filters are checked now (an
    unknown list or contact raises ``ExportError`` before anything is
    streamed); rows are read lazily on their own read-only connection, so the
    iterator can be consumed outside the app context (a streamed response).
    """
    conditions = _conditions(since, until, list_slug, contact_public_id)
    return _rows(db.engine, _select(conditions), batch_size)


def _conditions(
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    list_slug: str | None = None,
    contact_public_id: str | None = None,
) -> list:
    """The filters as WHERE clauses on ``consent_events`` (checked against the database)."""
    since, until = parse_time(since), parse_time(until)
    if since and until and since >= until:
        raise ExportError("--since must be earlier than --until.")
    event = ConsentEvent.__table__.c
    conditions = []
    with read_only_connection(db.engine) as connection:
        if list_slug:
            list_id = connection.scalar(db.select(MailingList.id).filter_by(slug=list_slug))
            if list_id is None:
                raise ExportError(f"No list has the slug {list_slug!r}.")
            conditions.append(event.list_id == list_id)
        if contact_public_id:
            contact_id = connection.scalar(
                db.select(Contact.id).filter_by(public_id=contact_public_id)
            )
            if contact_id is None:
                raise ExportError(f"No contact has the id {contact_public_id!r}.")
            conditions.append(event.contact_id == contact_id)
    if since:
        conditions.append(event.occurred_at >= since)
    if until:
        conditions.append(event.occurred_at < until)
    return conditions


def _select(conditions: list):
    """The export's one select: events with their contact, primary email and list.

    The primary email (the personal address, else the first one, as
    ``Contact.primary_email``) comes from one grouped pass over the addresses
    joined by contact, not a subquery per event.
    """
    event = ConsentEvent.__table__.c
    address = Address.__table__.c
    primary_id = (
        db.select(
            address.contact_id,
            func.coalesce(
                func.min(case((address.kind == PERSONAL, address.id), else_=None)),
                func.min(address.id),
            ).label("address_id"),
        )
        .group_by(address.contact_id)
        .subquery("primary_id")
    )
    primary = Address.__table__.alias("primary_address")
    return (
        db.select(
            event.id,
            event.occurred_at,
            Contact.public_id,
            case((Contact.erased_at.is_(None), primary.c.email), else_=None),
            MailingList.slug,
            event.action,
            event.from_state,
            event.to_state,
            event.basis,
            event.source,
            event.channel,
            event.actor,
            event.ip,
            event.user_agent,
            event.evidence,
            event.notice_version,
            event.jurisdiction,
            event.language,
            event.request_id,
            event.detail,
            event.personal_salt,
            event.personal_digest,
            event.prev_hash,
            event.hash,
        )
        .select_from(ConsentEvent.__table__)
        .join(Contact, Contact.id == event.contact_id)
        .outerjoin(primary_id, primary_id.c.contact_id == event.contact_id)
        .outerjoin(primary, primary.c.id == primary_id.c.address_id)
        .outerjoin(MailingList, MailingList.id == event.list_id)
        .where(*conditions)
        .order_by(event.id)
    )


def _rows(engine, statement, batch_size: int) -> Iterator[tuple]:
    with read_only_connection(engine) as connection:
        result = connection.execution_options(yield_per=batch_size).execute(statement)
        for event_id, occurred_at, public_id, email, *rest in result:
            yield (event_id, format_time(occurred_at), public_id, public_id, email, *rest)


def render(format: str, rows: Iterable[tuple], bom: bool = False) -> Iterator[str]:
    """Text chunks of ``rows`` as ``csv``, ``json`` (one array) or ``ndjson``.

    The BOM (for spreadsheets that guess the encoding) applies to CSV only:
    JSON must not start with one (RFC 8259).
    """
    if format == "csv":
        return _csv(rows, bom)
    if format == "json":
        return _json(rows)
    if format == "ndjson":
        return _ndjson(rows)
    raise ExportError(f"Unknown format {format!r}; use one of {', '.join(FORMATS)}.")


def neutralise(value: Any) -> Any:
    """A cell a spreadsheet shows as text: a leading ``'`` before a formula trigger."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def _csv(rows: Iterable[tuple], bom: bool) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if bom:
        buffer.write(BOM)
    writer.writerow(EXPORT_COLUMNS)
    for count, row in enumerate(rows, 1):
        cells = list(row)
        for index in _TEXT:
            value = cells[index]
            if value and value.startswith(FORMULA_TRIGGERS):
                cells[index] = "'" + value
        writer.writerow(cells)
        if count % CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _object(row: tuple) -> str:
    return json.dumps(dict(zip(EXPORT_COLUMNS, row, strict=True)), ensure_ascii=False)


def _ndjson(rows: Iterable[tuple]) -> Iterator[str]:
    lines: list[str] = []
    for row in rows:
        lines.append(_object(row) + "\n")
        if len(lines) == CHUNK_ROWS:
            yield "".join(lines)
            lines.clear()
    yield "".join(lines)


def _json(rows: Iterable[tuple]) -> Iterator[str]:
    separator = "[\n"
    lines: list[str] = []
    for row in rows:
        lines.append(separator + _object(row))
        separator = ",\n"
        if len(lines) == CHUNK_ROWS:
            yield "".join(lines)
            lines.clear()
    lines.append("[\n]\n" if separator == "[\n" else "\n]\n")
    yield "".join(lines)


class Export:
    """One export run: its bytes, and what its manifest says once they are all out."""

    def __init__(self, format: str, filters: dict | None = None, bom: bool = False):
        if format not in FORMATS:
            raise ExportError(f"Unknown format {format!r}; use one of {', '.join(FORMATS)}.")
        self.format, self.bom = format, bom and format == "csv"
        self.filters = {k: v for k, v in (filters or {}).items() if v not in (None, "")}
        self.generated_at = utcnow()
        self._conditions = _conditions(**self.filters)  # validates the filters now
        self.rows = _rows(db.engine, _select(self._conditions), 2000)
        self.row_count = 0
        self.size = 0
        self.last_event_id = 0
        self._sha256 = hashlib.sha256()

    @property
    def sha256(self) -> str:
        """The sha256 of the bytes given out so far (of the whole file after the last chunk)."""
        return self._sha256.hexdigest()

    def _counted(self, rows: Iterable[tuple]) -> Iterator[tuple]:
        for row in rows:
            self.row_count += 1
            self.last_event_id = row[_ID]
            yield row

    def chunks(self) -> Iterator[bytes]:
        """The export as UTF-8 byte chunks; the manifest is complete after the last one."""
        for text in render(self.format, self._counted(self.rows), bom=self.bom):
            data = text.encode("utf-8")
            self._sha256.update(data)
            self.size += len(data)
            yield data

    def chain_heads(self) -> Iterator[tuple[str, str]]:
        """(contact, hash of its last exported event) for each contact in the export.

        Read after the rows, from the database (the last event of each contact
        among those the filters select, up to the last one exported), so no
        per-contact state is kept while the rows stream.
        """
        if not self.row_count:
            return iter(())
        event = ConsentEvent.__table__.c
        last = (
            db.select(func.max(event.id).label("id"))
            .where(*self._conditions, event.id <= self.last_event_id)
            .group_by(event.contact_id)
            .subquery("last_event")
        )
        statement = (
            db.select(Contact.public_id, event.hash)
            .select_from(ConsentEvent.__table__)
            .join(last, last.c.id == event.id)
            .join(Contact, Contact.id == event.contact_id)
            .order_by(event.contact_id)
        )
        return _pairs(db.engine, statement)

    def _fields(self, file: str | None) -> dict:
        return {
            "file": file,
            "format": self.format,
            "bom": self.bom,
            "filters": {
                key: format_time(value) if isinstance(value, datetime) else value
                for key, value in (
                    ("since", parse_time(self.filters.get("since"))),
                    ("until", parse_time(self.filters.get("until"))),
                    ("list", self.filters.get("list_slug")),
                    ("contact", self.filters.get("contact_public_id")),
                )
            },
            "columns": list(EXPORT_COLUMNS),
            "rows": self.row_count,
            "bytes": self.size,
            "sha256": self._sha256.hexdigest(),
            "generated_at": format_time(self.generated_at),
        }

    def manifest_text(self, file: str | None = None) -> str:
        """The manifest as JSON text (indented), written piece by piece: ``chain_heads``
        (the hash of the last exported event of each contact) comes straight from
        ``chain_heads`` without a dict of every contact."""
        head = json.dumps(self._fields(file), indent=2, ensure_ascii=False)
        parts = [head[:-2], ',\n  "chain_heads": {']
        separator = "\n    "
        for public_id, hash_ in self.chain_heads():
            parts.append(f"{separator}{json.dumps(public_id)}: {json.dumps(hash_)}")
            separator = ",\n    "
        parts.append("\n  }\n}\n" if separator != "\n    " else "}\n}\n")
        return "".join(parts)

    def manifest(self, file: str | None = None) -> dict:
        return json.loads(self.manifest_text(file))


def _pairs(engine, statement) -> Iterator[tuple[str, str]]:
    with read_only_connection(engine) as connection:
        result = connection.execution_options(yield_per=2000).execute(statement)
        yield from (tuple(row) for row in result)


def record_export(manifest: dict | str, *, actor: str, admin_id: int | None = None) -> AdminAction:
    """Record an export (its manifest, as a dict or its JSON text) as an admin action
    and commit it (its own transaction)."""
    detail = manifest if isinstance(manifest, str) else json.dumps(manifest)
    action = AdminAction(admin_id=admin_id, actor=actor, action="export_log", detail=detail)
    db.session.add(action)
    db.session.commit()
    return action


def download(
    format: str,
    filters: dict | None = None,
    bom: bool = False,
    *,
    actor: str,
    admin_id: int | None = None,
) -> Iterator[bytes]:
    """Byte chunks for a streamed download, recording the export once fully sent.

    Filters are checked when this is called. The recording needs the app
    context: wrap the iterator in ``flask.stream_with_context``.
    """
    export = Export(format, filters, bom)

    def body() -> Iterator[bytes]:
        yield from export.chunks()
        record_export(export.manifest_text(), actor=actor, admin_id=admin_id)

    return body()


def write_export(
    path: str | os.PathLike,
    format: str,
    filters: dict | None = None,
    bom: bool = False,
    *,
    actor: str = "cli",
    admin_id: int | None = None,
) -> dict:
    """Write an export to ``path`` and its manifest to ``<path>.manifest.json``.

    The file appears whole or not at all (written beside, then renamed). The
    export is recorded as an admin action; returns the manifest.
    """
    return json.loads(
        write_export_file(path, format, filters, bom, actor=actor, admin_id=admin_id)[1]
    )


def write_export_file(
    path: str | os.PathLike,
    format: str,
    filters: dict | None = None,
    bom: bool = False,
    *,
    actor: str = "cli",
    admin_id: int | None = None,
) -> tuple[Export, str]:
    """``write_export`` returning the run and its manifest's text (no dict of every head)."""
    path = Path(path)
    export = Export(format, filters, bom)
    partial = path.with_name(path.name + ".part")
    try:
        with partial.open("wb") as out:
            for chunk in export.chunks():
                out.write(chunk)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    text = export.manifest_text(file=path.name)
    path.with_name(path.name + ".manifest.json").write_text(text, encoding="utf-8")
    record_export(text, actor=actor, admin_id=admin_id)
    return export, text
