"""Export of the consent log: streamed rows, CSV/JSON/NDJSON, and a manifest.

Rows come from one streamed Core select, read in batches from the driver's
cursor, so memory stays flat however many events there are. The select itself
renders ``occurred_at`` as ``ledger.format_time`` does and, for CSV, guards the
text cells against formulas, so a batch goes to ``csv.writer`` as the driver
returns it. Each export is recorded as an admin action whose detail is its
manifest (row count, filters, sha256 of the bytes, the chain heads it covers);
an export written to a file with its manifest beside it records the manifest's
sha256 and its number of chain heads instead of every head again.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import String, case, cast, exists, func, literal, select

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
    plan = _Plan(db.engine, conditions, neutralised=False)
    return (row for batch in plan.batches(batch_size) for row in batch)


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


# ``ledger.format_time`` in SQL, where the stored value allows it: SQLite keeps
# the text SQLAlchemy's DateTime writes, always "YYYY-MM-DD HH:MM:SS.ffffff"
# (26 characters; only the separator and the "Z" differ), PostgreSQL renders
# the timestamp itself.
_SQLITE_STORED_LENGTH = 26
_POSTGRESQL_TIME_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'


def _time_text(engine, conditions: list):
    """``occurred_at`` as ``format_time`` text in SQL, or None when only Python can render it.

    A stored value of another length (no SQLAlchemy write makes one) or a year
    before 1000 (``strftime`` does not pad it) sends the whole export down the
    Python path, so the bytes are the same either way.
    """
    occurred_at = ConsentEvent.__table__.c.occurred_at
    if engine.dialect.name == "sqlite":
        day, time = func.substr(occurred_at, 1, 10, type_=String), func.substr(occurred_at, 12)
        text = day + "T" + time + "Z"
        # A scan of the occurred_at index: 0.07 s at 1M events (a GLOB took 0.5 s).
        odd = (func.length(occurred_at) != _SQLITE_STORED_LENGTH) | (
            func.substr(occurred_at, 11, 1) != " "
        )
    elif engine.dialect.name == "postgresql":
        text = func.to_char(occurred_at, _POSTGRESQL_TIME_FORMAT)
        odd = occurred_at < datetime(1000, 1, 1)
    else:
        return None
    with read_only_connection(engine) as connection:
        if connection.scalar(select(exists().where(*conditions, odd))):
            return None
    return cast(text, String)


def _guarded(column):
    """A text cell a spreadsheet shows as text (``neutralise`` in SQL)."""
    return case(
        (func.substr(column, 1, 1).in_(FORMULA_TRIGGERS), literal("'", String) + column),
        else_=column,
    )


class _Plan:
    """The export's select for one engine and set of filters, and its rows in batches."""

    def __init__(self, engine, conditions: list, *, neutralised: bool):
        self.engine = engine
        self.time_text = _time_text(engine, conditions)
        self.statement = _select(conditions, self.time_text, neutralised)
        self.neutralised = neutralised

    def batches(self, batch_size: int = 500) -> Iterator[list]:
        """Lists of rows in ``EXPORT_COLUMNS`` order, straight from the driver's cursor."""
        if self.time_text is None:
            yield from _python_batches(self.engine, self.statement, batch_size, self.neutralised)
        else:
            yield from _driver_batches(self.engine, self.statement, batch_size)


def _select(conditions: list, time_text=None, neutralised: bool = False):
    """The export's one select: events with their contact, primary email and list.

    The primary email (the personal address, else the first one, as
    ``Contact.primary_email``) comes from one grouped pass over the addresses
    joined by contact, not a subquery per event. Columns are in
    ``EXPORT_COLUMNS`` order; ``time_text`` renders ``occurred_at`` (else the
    datetime is selected), ``neutralised`` guards the text columns.
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
    columns = {
        "event_id": event.id,
        "occurred_at": event.occurred_at if time_text is None else time_text,
        "contact_id": Contact.public_id,
        "contact": Contact.public_id,
        "email": case((Contact.erased_at.is_(None), primary.c.email), else_=None),
        "list": MailingList.slug,
        **{name: event[name] for name in EXPORT_COLUMNS[6:]},
    }
    if neutralised and time_text is not None:
        columns.update({name: _guarded(columns[name]) for name in TEXT_COLUMNS})
    return (
        db.select(*(columns[name].label(name) for name in EXPORT_COLUMNS))
        .select_from(ConsentEvent.__table__)
        .join(Contact, Contact.id == event.contact_id)
        .outerjoin(primary_id, primary_id.c.contact_id == event.contact_id)
        .outerjoin(primary, primary.c.id == primary_id.c.address_id)
        .outerjoin(MailingList, MailingList.id == event.list_id)
        .where(*conditions)
        .order_by(event.id)
    )


def _driver_query(statement, dialect) -> tuple[str, Any]:
    """The SQL text and the parameters (as SQLAlchemy would bind them) of ``statement``."""
    # The formula guard's IN list expands into one parameter per trigger.
    compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    values = compiled.construct_params()
    for bind, name in compiled.bind_names.items():
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None and name in values:
            values[name] = processor(values[name])
    if compiled.positional:
        return str(compiled), [values[name] for name in compiled.positiontup]
    return str(compiled), values


def _driver_batches(engine, statement, batch_size: int) -> Iterator[list]:
    """The rows of ``statement`` as the DB-API cursor fetches them (no result processing:
    every column is already text or a number), on a read-only connection; a server-side
    cursor on PostgreSQL."""
    with read_only_connection(engine) as connection:
        sql, parameters = _driver_query(statement, connection.dialect)
        if not connection.in_transaction():
            connection.begin()  # SQLite's deferred BEGIN (the snapshot) comes from here
        driver = connection.connection.driver_connection
        if engine.dialect.name == "postgresql":
            cursor = driver.cursor(name="log_export")
            cursor.itersize = batch_size
        else:
            cursor = driver.cursor()
        try:
            cursor.execute(sql, parameters)
            while batch := cursor.fetchmany(batch_size):
                yield batch
        finally:
            cursor.close()


def _python_batches(engine, statement, batch_size: int, neutralised: bool) -> Iterator[list]:
    """The same rows through SQLAlchemy, the time formatted and the cells guarded in Python."""
    with read_only_connection(engine) as connection:
        result = connection.execution_options(yield_per=batch_size).execute(statement)
        for partition in result.partitions():
            batch = []
            for event_id, occurred_at, *rest in partition:
                row = [event_id, format_time(occurred_at), *rest]
                if neutralised:
                    for index in _TEXT:
                        row[index] = neutralise(row[index])
                batch.append(tuple(row))
            yield batch


def render(format: str, batches: Iterable[list], bom: bool = False) -> Iterator[str]:
    """Text chunks of ``batches`` (lists of rows) as ``csv``, ``json`` (one array) or ``ndjson``.

    CSV rows come with their text cells already guarded (``_Plan`` with
    ``neutralised``). The BOM (for spreadsheets that guess the encoding)
    applies to CSV only: JSON must not start with one (RFC 8259).
    """
    if format == "csv":
        return _csv(batches, bom)
    if format == "json":
        return _json(batches)
    if format == "ndjson":
        return _ndjson(batches)
    raise ExportError(f"Unknown format {format!r}; use one of {', '.join(FORMATS)}.")


def neutralise(value: Any) -> Any:
    """A cell a spreadsheet shows as text: a leading ``'`` before a formula trigger."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def _csv(batches: Iterable[list], bom: bool) -> Iterator[str]:
    # A list as the writer's file: a StringIO reused after truncate() keeps a
    # 4-byte-per-character buffer of its largest batch.
    lines: list[str] = [BOM] if bom else []
    writer = csv.writer(_Appender(lines))
    writer.writerow(EXPORT_COLUMNS)
    for batch in batches:
        writer.writerows(batch)
        yield "".join(lines)
        lines.clear()
    yield "".join(lines)


class _Appender:
    """A file whose ``write`` appends to a list."""

    def __init__(self, lines: list[str]):
        self.write = lines.append


def _object(row: tuple) -> str:
    return json.dumps(dict(zip(EXPORT_COLUMNS, row, strict=True)), ensure_ascii=False)


def _ndjson(batches: Iterable[list]) -> Iterator[str]:
    for batch in batches:
        yield "".join([_object(row) + "\n" for row in batch])


def _json(batches: Iterable[list]) -> Iterator[str]:
    separator = "[\n"
    for batch in batches:
        lines = []
        for row in batch:
            lines.append(separator + _object(row))
            separator = ",\n"
        yield "".join(lines)
    yield "[\n]\n" if separator == "[\n" else "\n]\n"


# Chain heads per piece of manifest text: the manifest is written piece by piece.
HEADS_PER_PIECE = 1000


class Export:
    """One export run: its bytes, and what its manifest says once they are all out."""

    def __init__(self, format: str, filters: dict | None = None, bom: bool = False):
        if format not in FORMATS:
            raise ExportError(f"Unknown format {format!r}; use one of {', '.join(FORMATS)}.")
        self.format, self.bom = format, bom and format == "csv"
        self.filters = {k: v for k, v in (filters or {}).items() if v not in (None, "")}
        self.generated_at = utcnow()
        self._conditions = _conditions(**self.filters)  # validates the filters now
        self._plan = _Plan(db.engine, self._conditions, neutralised=format == "csv")
        self.row_count = 0
        self.size = 0
        self.last_event_id = 0
        self.chain_head_count = 0  # once the manifest is written
        self._sha256 = hashlib.sha256()

    @property
    def sha256(self) -> str:
        """The sha256 of the bytes given out so far (of the whole file after the last chunk)."""
        return self._sha256.hexdigest()

    def _counted(self, batches: Iterable[list]) -> Iterator[list]:
        for batch in batches:
            self.row_count += len(batch)
            self.last_event_id = batch[-1][_ID]
            yield batch

    def chunks(self) -> Iterator[bytes]:
        """The export as UTF-8 byte chunks; the manifest is complete after the last one."""
        for text in render(self.format, self._counted(self._plan.batches()), bom=self.bom):
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

    def manifest_pieces(self, file: str | None = None) -> Iterator[str]:
        """The manifest as JSON text (indented) in pieces: ``chain_heads`` (the hash of
        the last exported event of each contact) comes straight from ``chain_heads``,
        a thousand heads a piece, without a dict or a text of every contact."""
        head = json.dumps(self._fields(file), indent=2, ensure_ascii=False)
        yield head[:-2] + ',\n  "chain_heads": {'
        separator, lines = "\n    ", []
        self.chain_head_count = 0
        for public_id, hash_ in self.chain_heads():
            lines.append(f"{separator}{json.dumps(public_id)}: {json.dumps(hash_)}")
            separator = ",\n    "
            self.chain_head_count += 1
            if len(lines) == HEADS_PER_PIECE:
                yield "".join(lines)
                lines.clear()
        lines.append("\n  }\n}\n" if separator != "\n    " else "}\n}\n")
        yield "".join(lines)

    def manifest_text(self, file: str | None = None) -> str:
        """The whole manifest as one JSON text (for a download's admin action)."""
        return "".join(self.manifest_pieces(file))

    def manifest(self, file: str | None = None) -> dict:
        return json.loads(self.manifest_text(file))

    def write_manifest(self, path: Path, file: str | None) -> str:
        """Write the manifest to ``path`` piece by piece (whole or not at all, like
        the export); returns the sha256 of its bytes."""
        digest = hashlib.sha256()
        partial = path.with_name(path.name + ".part")
        try:
            with partial.open("wb") as out:
                for piece in self.manifest_pieces(file):
                    data = piece.encode("utf-8")
                    digest.update(data)
                    out.write(data)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        return digest.hexdigest()

    def record_of_manifest(self, file: str, manifest_sha256: str) -> dict:
        """What the admin action keeps of a manifest written beside its file: every
        field but the chain heads, their number, and the manifest's sha256 (the heads
        are in the manifest; 200,000 of them are 20 MB, which the action's detail and
        the process writing it do not need to hold twice)."""
        return {
            **self._fields(file),
            "chain_head_count": self.chain_head_count,
            "manifest_sha256": manifest_sha256,
        }


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
) -> tuple[Export, dict]:
    """Write an export to ``path`` and its manifest to ``<path>.manifest.json``.

    Each file appears whole or not at all (written beside, then renamed). The
    export is recorded as an admin action (``Export.record_of_manifest``); returns
    the run and that record, holding no text or dict of every chain head.
    """
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
    manifest_sha256 = export.write_manifest(
        path.with_name(path.name + ".manifest.json"), file=path.name
    )
    recorded = export.record_of_manifest(path.name, manifest_sha256)
    record_export(recorded, actor=actor, admin_id=admin_id)
    return export, recorded
