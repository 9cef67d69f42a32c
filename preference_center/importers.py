"""Import contacts with provenance: a plain CSV, or a LinkedIn connections export.

Every row is validated before anything is written. By default one bad row
refuses the whole file; with ``skip_invalid`` the valid rows are imported and
the rejected ones are returned with their reasons. Either way the writes are
one transaction, made by the caller's commit (a dry run rolls back itself).

A LinkedIn export, like any source that names a network, only ever invites:
a connection is not consent. That rule, like every consent rule, is
``consent.Provenance.checked``'s; this module reads files and reports rows.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import IO

from . import consent, jurisdictions, languages, validation, wording
from .addresses import owned_addresses, release_unverified_claim
from .consent import ConsentError, Provenance, Via
from .extensions import db
from .models import (
    INVITED,
    PERSONAL,
    SUBSCRIBED,
    Address,
    Channel,
    Contact,
    MailingList,
    utcnow,
)
from .suppression import suppressed_addresses
from .validation import UnsafeText, header_safe_text

PLAIN = "csv"
LINKEDIN = "linkedin"
PLAIN_COLUMNS = (
    "email",
    "name",
    "evidence",
    "basis_date",
    "jurisdiction",
    "subscriber_type",
    "relationship_ended_on",
    "language",
)
# LinkedIn's header is First Name,Last Name,URL,Email Address,Company,Position,Connected On;
# these columns make a header row LinkedIn's, whatever else it grows.
LINKEDIN_REQUIRED = frozenset({"first name", "last name", "email address", "connected on"})
# LinkedIn puts a few lines of notes above its header; look this far for it.
PREAMBLE_RECORDS = 20
# Tried in order; latin-1 decodes any byte, so decoding never fails.
ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")
DELIMITERS = (",", ";", "\t")


class ImportRefused(ValueError):
    """The whole file is refused (unknown list, wrong basis, unreadable CSV, …).

    ``refusal`` is the consent rule's own refusal, when that is the reason.
    """

    def __init__(self, message: str, refusal: ConsentError | None = None):
        super().__init__(message)
        self.refusal = refusal


class InvalidRows(ImportRefused):
    """Some rows are invalid and ``skip_invalid`` was not asked for: nothing written."""

    def __init__(self, summary: ImportSummary):
        self.summary = summary
        count = len(summary.rejected)
        super().__init__(
            f"{count} row{'s have' if count != 1 else ' has'} problems, so nothing was imported. "
            "Fix them, or use --skip-invalid to import the valid rows and write the "
            "rejected ones, with their reasons, to a file."
        )


@dataclass(frozen=True)
class ImportOptions:
    """What the person importing says about every row of the file."""

    list_slug: str
    source: str
    basis: str
    added_by: str
    dry_run: bool = False
    skip_invalid: bool = False
    # Named in each row's default evidence ("line 12 of contacts.csv").
    filename: str = "the import file"
    # Who ran the import, for the consent log; defaults to added_by.
    actor: str | None = None


@dataclass
class Rejected:
    line: int
    reason: str
    values: list[str]


@dataclass
class ImportSummary:
    """What an import did (or, for a dry run, would do)."""

    list_slug: str
    format: str = PLAIN
    encoding: str = "utf-8"
    columns: list[str] = field(default_factory=list)
    dry_run: bool = False
    created: int = 0
    updated: int = 0
    invited: int = 0
    unchanged: int = 0
    suppressed: int = 0
    skipped_without_email: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    def counts(self) -> str:
        """created 2, updated 0, invited 0, unchanged 1, suppressed 1, rejected 0 (+ extras)."""
        parts = [
            f"created {self.created}",
            f"updated {self.updated}",
            f"invited {self.invited}",
            f"unchanged {self.unchanged}",
            f"suppressed {self.suppressed}",
            f"rejected {len(self.rejected)}",
        ]
        if self.format == LINKEDIN:
            parts.append(f"skipped without email {self.skipped_without_email}")
        if self.duplicates:
            parts.append(f"duplicates merged {self.duplicates}")
        return ", ".join(parts)


@dataclass
class _Row:
    line: int
    values: list[str]
    email: str
    name: str | None
    evidence: str
    basis_date: date | None
    # Blank cells are None: the contact's stored value (or the default) applies.
    jurisdiction: str | None = None
    subscriber_type: str | None = None
    relationship_ended_on: date | None = None
    # BCP 47, one of languages.SUPPORTED; None when the file gives none.
    language: str | None = None


def decode(data: bytes) -> tuple[str, str]:
    """The file's text and the encoding it was read with (BOM or not)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte")  # pragma: no cover


# A line and its ending as ``open(..., newline="")`` reads it: CR LF, CR or LF.
LINE = re.compile(r"[^\r\n]*(?:\r\n?|\n)|[^\r\n]+\Z")


def lines(text: str) -> Iterator[str]:
    """The lines of ``text`` one at a time, endings kept, without copying it whole
    (``io.StringIO(text)`` holds four bytes a character: ~190 MB more at 1,000,000 rows)."""
    return (match.group() for match in LINE.finditer(text))


def records(text: str, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """Non-blank CSV records with the file line each starts on (quoted newlines kept)."""
    reader = csv.reader(lines(text), delimiter=delimiter)
    start = 1
    try:
        for values in reader:
            # NUL is never meant in a CSV cell, and PostgreSQL text refuses it.
            values = [value.replace("\x00", "") for value in values]
            if any(value.strip() for value in values):
                yield start, values
            start = reader.line_num + 1
    except csv.Error as error:
        raise ImportRefused(f"Line {reader.line_num}: the CSV cannot be read ({error}).") from None


def _names(values: list[str]) -> list[str]:
    return [value.strip().lower() for value in values]


def detect(text: str) -> tuple[str, str, int, list[str]]:
    """Format, delimiter, header line and header of the file.

    A plain CSV names its columns on its first row; a LinkedIn export has
    notes first, so its header row is looked for a little further down.
    """
    first = next(records(text), None)
    if first is None:
        raise ImportRefused("The file is empty.")
    if "email" in _names(first[1]):
        return PLAIN, ",", first[0], first[1]
    for index, (line, values) in enumerate(records(text)):
        if index >= PREAMBLE_RECORDS:
            break
        if LINKEDIN_REQUIRED <= set(_names(values)):
            return LINKEDIN, ",", line, values
    for delimiter in DELIMITERS[1:]:
        line, values = next(records(text, delimiter))
        if "email" in _names(values):
            return PLAIN, delimiter, line, values
    raise ImportRefused(
        f"No 'email' column in the header row (line {first[0]}: {', '.join(first[1])}). "
        "The first row must name the columns: email (required), name, evidence, basis_date, "
        "jurisdiction, subscriber_type, relationship_ended_on, language. "
        "A LinkedIn Connections.csv is recognised by its own header row."
    )


def parse_basis_date(
    raw: str, basis: str, relationship_ended_on: date | None = None
) -> tuple[date | None, str | None]:
    """The dated fact of a basis (purchase, inquiry, donation, capture, sale), or why it
    is unusable."""
    if basis not in consent.DATED_BASES:
        return None, None
    if not raw.strip():
        return None, f"basis_date is required for {basis} (the date, as YYYY-MM-DD)"
    try:
        day = date.fromisoformat(raw.strip())
    except ValueError:
        return None, f"basis_date {raw.strip()!r} is not a date (use YYYY-MM-DD)"
    now = utcnow()
    problem = consent.basis_date_problem(basis, day, now.date())
    if problem:
        return None, problem
    expires_at = consent.implied_expiry(basis, day, relationship_ended_on)
    if expires_at is not None and expires_at <= now:
        return None, (
            f"implied consent from {day.isoformat()} already ended on "
            f"{expires_at.date().isoformat()}"
        )
    return day, None


def _cell(values: list[str], columns: dict[str, int], name: str) -> str:
    index = columns.get(name)
    return values[index] if index is not None and index < len(values) else ""


def _clean_name(raw: str) -> str | None:
    # Quoted names may carry newlines or runs of spaces; a name is one line.
    return " ".join(raw.split())[:200] or None


def read_rows(
    text: str, options: ImportOptions, summary: ImportSummary
) -> Iterator[_Row | Rejected]:
    """Every data row as a valid ``_Row`` or a ``Rejected`` with its reason."""
    kind, delimiter, header_line, header = detect(text)
    summary.format, summary.columns = kind, header
    columns: dict[str, int] = {}
    for index, name in enumerate(_names(header)):
        columns.setdefault(name, index)
    if kind == PLAIN and options.basis in consent.DATED_BASES and "basis_date" not in columns:
        raise ImportRefused(
            f"Basis {options.basis} needs a basis_date column: "
            f"{consent.DATED_BASES[options.basis]} of each row (YYYY-MM-DD)."
        )
    for line, values in records(text, delimiter):
        if line <= header_line:
            continue
        if kind == LINKEDIN:
            raw_email = _cell(values, columns, "email address")
            if not raw_email.strip():
                summary.skipped_without_email += 1
                continue
            name = f"{_cell(values, columns, 'first name')} {_cell(values, columns, 'last name')}"
            connected_on = _cell(values, columns, "connected on").strip()
            evidence = (
                f"Connected on LinkedIn on {connected_on}"
                if connected_on
                else "Connected on LinkedIn (the export gives no date)"
            )
            basis_date, date_problem = None, None
            law, law_problems = {}, []
        else:
            raw_email = _cell(values, columns, "email")
            name = _cell(values, columns, "name")
            evidence = _cell(values, columns, "evidence").strip() or (
                f"Line {line} of {options.filename}"
            )
            law, law_problems = _law_cells(values, columns)
            basis_date, date_problem = parse_basis_date(
                _cell(values, columns, "basis_date"),
                options.basis,
                law.get("relationship_ended_on"),
            )
        problems = list(law_problems)
        email = ""
        if not raw_email.strip():
            problems.append("no email address")
        else:
            try:
                email = validation.email_address(raw_email)
            except validation.InvalidAddress:
                problems.append(f"{raw_email.strip()!r} is not an email address")
        if date_problem:
            problems.append(date_problem)
        raw_language = _cell(values, columns, "language").strip()
        language = languages.normalise(raw_language) if raw_language else None
        if raw_language and language is None:
            problems.append(
                f"language {raw_language!r} is not one we speak ({', '.join(languages.SUPPORTED)})"
            )
        name = _clean_name(name)
        try:
            header_safe_text(name or "", "The name")
        except UnsafeText as error:
            problems.append(str(error))
        if problems:
            yield Rejected(line=line, reason="; ".join(problems), values=values)
        else:
            yield _Row(line, values, email, name, evidence, basis_date, **law, language=language)


def _law_cells(values: list[str], columns: dict[str, int]) -> tuple[dict, list[str]]:
    """The row's jurisdiction, subscriber_type and relationship_ended_on, and their problems."""
    found: dict = {}
    problems: list[str] = []
    try:
        found["jurisdiction"] = jurisdictions.parse(_cell(values, columns, "jurisdiction"))
    except jurisdictions.JurisdictionError as error:
        problems.append(f"jurisdiction: {error}")
    try:
        found["subscriber_type"] = jurisdictions.parse_subscriber_type(
            _cell(values, columns, "subscriber_type")
        )
    except jurisdictions.JurisdictionError as error:
        problems.append(str(error))
    raw = _cell(values, columns, "relationship_ended_on").strip()
    if raw:
        try:
            found["relationship_ended_on"] = date.fromisoformat(raw)
        except ValueError:
            problems.append(f"relationship_ended_on {raw!r} is not a date (use YYYY-MM-DD)")
    return found, problems


def find_list(slug: str) -> MailingList:
    mailing_list = db.session.execute(
        db.select(MailingList).filter_by(slug=slug)
    ).scalar_one_or_none()
    if mailing_list is None:
        raise ImportRefused(f"There is no list {slug!r}.")
    if mailing_list.archived_at is not None:
        raise ImportRefused(f"The list {slug!r} is archived: nobody can be added to it.")
    return mailing_list


# Rows validated and written together: bounded memory, few statements per row.
CHUNK_ROWS = 1000


def import_contacts(
    data: bytes, options: ImportOptions, progress: Callable[[int, bool], None] | None = None
) -> ImportSummary:
    """Validate every row of ``data``, then add or update each valid one.

    Raises ``ImportRefused`` for a file that cannot be imported at all, and
    ``InvalidRows`` when rows are invalid and ``skip_invalid`` is off; either
    way the session is rolled back here, so nothing is written. The caller
    commits; a dry run rolls back here. Rows are read and written
    ``CHUNK_ROWS`` at a time (``consent.place_many`` for new contacts,
    ``consent.place`` for known ones); ``progress`` is told the number of data
    rows read after each chunk, and whether that was the last.
    """
    mailing_list = find_list(options.list_slug)
    try:
        return _import_all(data, options, mailing_list, progress)
    except ImportRefused:
        # Earlier chunks were written in this transaction: a refused file leaves nothing.
        db.session.rollback()
        raise


def _import_all(
    data: bytes,
    options: ImportOptions,
    mailing_list: MailingList,
    progress: Callable[[int, bool], None] | None,
) -> ImportSummary:
    text, encoding = decode(data)
    summary = ImportSummary(list_slug=mailing_list.slug, encoding=encoding, dry_run=options.dry_run)
    read = read_rows(text, options, summary)
    first = next(read, None)  # reads the header: the file's format is known now
    # A LinkedIn export is a networking source whatever the importer calls it.
    source = wording.NETWORKING_SOURCE if summary.format == LINKEDIN else options.source
    state = INVITED if options.basis == "none" else SUBSCRIBED
    _check_provenance(mailing_list, state, source, options, summary.format)
    via = Via(channel=Channel.IMPORT, actor=options.actor or options.added_by)
    seen: set[str] = set()
    chunk: list[_Row] = []
    done = 0
    for row in itertools.chain([first] if first is not None else [], read):
        done += 1
        if isinstance(row, Rejected):
            summary.rejected.append(row)
        elif row.email in seen:
            summary.duplicates += 1
        else:
            seen.add(row.email)
            chunk.append(row)
        if len(chunk) >= CHUNK_ROWS:
            _import_chunk(chunk, mailing_list, state, source, options, via, summary)
            chunk = []
            if progress is not None:
                progress(done, False)
    _import_chunk(chunk, mailing_list, state, source, options, via, summary)
    if progress is not None:
        progress(done, True)
    summary.rejected.sort(key=lambda rejected: rejected.line)
    if summary.rejected and not options.skip_invalid:
        raise InvalidRows(summary)
    db.session.flush()
    if options.dry_run:
        db.session.rollback()
    return summary


def _import_chunk(
    rows: list[_Row],
    mailing_list: MailingList,
    state: str,
    source: str,
    options: ImportOptions,
    via: Via,
    summary: ImportSummary,
) -> None:
    """Check and write one chunk of valid rows. Once a row is rejected without
    ``skip_invalid`` nothing more is written (the file is refused): the rows are
    still checked, so every problem is reported."""
    if not rows:
        return
    emails = [row.email for row in rows]
    known = _known_addresses(emails)
    provenances: list[tuple[_Row, Provenance]] = []
    for row in rows:
        provenance = Provenance(
            source=source,
            added_by=options.added_by,
            basis=options.basis,
            evidence=row.evidence,
            basis_date=row.basis_date,
            relationship_ended_on=row.relationship_ended_on,
        )
        # The rules for this row's jurisdiction, before anything is written.
        address = known.get(row.email)
        stored = address.contact.jurisdiction if address is not None else None
        jurisdiction = jurisdictions.effective(row.jurisdiction or stored)
        try:
            provenance.checked(mailing_list, state, jurisdiction)
        except ConsentError as error:
            summary.rejected.append(Rejected(line=row.line, reason=str(error), values=row.values))
            continue
        provenances.append((row, provenance))
    if summary.rejected and not options.skip_invalid:
        return
    # Erased new addresses are place_many's to find; a known one may carry a tombstone too.
    erased = suppressed_addresses([email for email in emails if email in known])
    claimed = _claimed_addresses([row.email for row, _ in provenances if row.email not in known])
    new: list[consent.NewContact] = []
    for row, provenance in provenances:
        if row.email in erased:
            summary.suppressed += 1
            continue
        if row.email in known:
            outcome = _import_row(row, known[row.email], mailing_list, state, provenance, via)
            _count(summary, outcome, state)
            continue
        if row.email in claimed:
            release_unverified_claim(row.email, via)
        new.append(
            consent.NewContact(
                email=row.email,
                provenance=provenance,
                name=row.name,
                jurisdiction=row.jurisdiction,
                subscriber_type=row.subscriber_type,
                language=row.language,
            )
        )
    for outcome in consent.place_many(mailing_list, state, new, via):
        _count(summary, outcome, state)


def _count(summary: ImportSummary, outcome: str, state: str) -> None:
    if outcome in ("created", "updated") and state == INVITED:
        outcome = "invited"
    setattr(summary, outcome, getattr(summary, outcome) + 1)


def _claimed_addresses(emails: list[str]) -> set[str]:
    """Those of ``emails`` held by an address row that does not identify its contact
    (an unverified business claim)."""
    found: set[str] = set()
    for start in range(0, len(emails), CHUNK_ROWS):
        wanted = emails[start : start + CHUNK_ROWS]
        found.update(
            db.session.execute(db.select(Address.email).where(Address.email.in_(wanted))).scalars()
        )
    return found


def _check_provenance(
    mailing_list: MailingList, state: str, source: str, options: ImportOptions, kind: str
) -> None:
    """The consent rules for the whole file, before any row is written."""
    # Stand-ins let the rules check everything but the rows' own cells (their
    # dates, evidence and jurisdictions are checked row by row; every row has
    # evidence: its own, or its line of the file). The stand-in evidence names a
    # page, as conspicuous publication asks.
    stand_in = utcnow().date() if options.basis in consent.DATED_BASES else None
    provenance = Provenance(
        source,
        options.added_by,
        options.basis,
        f"the rows of {options.filename} (https://stand-in.example/)",
        stand_in,
    )
    try:
        provenance.checked(mailing_list, state)
    except ConsentError as error:
        what = "This is a LinkedIn connections export. " if kind == LINKEDIN else ""
        raise ImportRefused(f"{what}{error}", error) from None


def _known_addresses(emails: list[str]) -> dict[str, Address]:
    """The addresses among ``emails`` that already belong to a contact (verified or on file)."""
    return owned_addresses(emails)


def _import_row(
    row: _Row,
    address: Address | None,
    mailing_list: MailingList,
    state: str,
    provenance: Provenance,
    via: Via,
) -> str:
    """created, updated, unchanged or suppressed (erased, withdrawn or declined)."""
    if address is not None:
        contact = address.contact
        if contact.erased_at is not None:
            return "suppressed"
    else:
        release_unverified_claim(row.email, via)
        contact = Contact(name=row.name, jurisdiction=row.jurisdiction)
        contact.addresses.append(
            Address(email=row.email, kind=PERSONAL, subscriber_type=row.subscriber_type)
        )
        db.session.add(contact)
        db.session.flush()
        address = contact.addresses[0]
    # A cell that is filled in updates what is known (and is logged); a blank one keeps it.
    if row.jurisdiction is not None:
        consent.set_jurisdiction(contact, row.jurisdiction, via)
    if row.subscriber_type is not None:
        consent.set_subscriber_type(address, row.subscriber_type, via)
    # The file names a language only for contacts who have not chosen one themselves.
    if row.language is not None and contact.language is None:
        consent.set_language(contact, row.language, via)
    try:
        _subscription, outcome = consent.place(contact, mailing_list, state, provenance, via)
    except consent.BusinessDeclined:
        return "suppressed"  # only the contact can choose a business list again
    return outcome


def write_rejected(summary: ImportSummary, stream: IO[str]) -> None:
    """The rejected rows as CSV: line, reason, then the file's own columns."""
    writer = csv.writer(stream)
    writer.writerow(["line", "reason", *summary.columns])
    for rejected in summary.rejected:
        writer.writerow([rejected.line, rejected.reason, *rejected.values])
