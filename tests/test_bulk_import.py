"""The bulk import (``consent.place_many`` in chunks) writes what placing row by row writes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers import fresh

from preference_center import addresses, consent, importers, ledger, suppression, wording
from preference_center.consent import Via
from preference_center.extensions import db
from preference_center.models import (
    Address,
    Channel,
    ConsentEvent,
    Contact,
    MailingList,
    Subscription,
    utcnow,
)

PAGE = Via(channel="preference_page", actor="contact")
TODAY = utcnow().date()
LONG_AGO = (TODAY - timedelta(days=400)).isoformat()
ENDED = (TODAY - timedelta(days=30)).isoformat()

# Every case an import meets: new rows (with every optional cell), known
# contacts (no subscription yet, already subscribed, withdrawn, disputed,
# declined business), an erased address, an address another contact claimed
# without verifying it, a duplicate, and invalid rows.
EXPRESS_FILE = (
    "email,name,evidence,jurisdiction,subscriber_type,language\n"
    "new.one@example.com,New One,Ticked the box,US,corporate,fr\n"
    "New.Two@example.com,New Two,,,,\n"
    "known@example.com,Known,Asked at the desk,GB,individual\n"
    "subscribed@example.com,Subscribed,,,\n"
    "withdrew@example.com,Withdrew,,,\n"
    "disputed@example.com,Disputed,,,\n"
    "declined@example.com,Declined,,,\n"
    "erased@example.com,Erased,,,\n"
    "claimed@example.com,Owner,,,\n"
    "new.one@example.com,New One again,,,\n"
    "not-an-address,Broken,,,\n"
    "bad.country@example.com,Bad,,Narnia,\n"
) + "".join(f"many{n}@example.com,Many {n},,CA,\n" for n in range(25))
IMPLIED_FILE = (
    "email,name,basis_date,relationship_ended_on\n"
    f"buyer@example.com,Buyer,{LONG_AGO},\n"
    f"member@example.com,Member,{LONG_AGO},{ENDED}\n"
    f"known@example.com,Known,{LONG_AGO},\n"
    "nodate@example.com,No date,,\n"
)
LINKEDIN_FILE = (
    "First Name,Last Name,URL,Email Address,Company,Position,Connected On\n"
    "Sam,Rivera,https://www.linkedin.com/in/sam,sam@example.com,Acme,CEO,15 Feb 2011\n"
    "Known,Again,https://www.linkedin.com/in/k,known@example.com,Acme,CTO,01 Jan 2020\n"
)
IMPORTS = (
    (EXPRESS_FILE, "insights", "express", "seminar sheet"),
    (IMPLIED_FILE, "shop", "implied_purchase", "shop orders"),
    (LINKEDIN_FILE, "insights", "none", "my connections"),
)


def _set_up(make, domain: str, tag: str) -> None:
    """The same known contacts, lists and tombstone, through the real verbs."""
    insights = make.list(f"insights-{tag}")
    make.list(f"shop-{tag}", audience="personal")
    make.contact(f"known@{domain}", name="Known")
    make.subscription(make.contact(f"subscribed@{domain}", name="Subscribed"), insights)
    withdrew = make.contact(f"withdrew@{domain}", name="Withdrew")
    consent.withdraw(make.subscription(withdrew, insights), PAGE)
    disputed = make.contact(f"disputed@{domain}", name="Disputed")
    consent.dispute(make.subscription(disputed, insights, state="invited", basis="none"), PAGE, "")
    consent.decline_business_contact(make.contact(f"declined@{domain}", name="Declined"), PAGE)
    suppression.suppress(f"Erased@{domain}")
    claimer = make.contact(f"claimer@{domain}", name="Claimer")
    addresses.add_business_address(claimer, f"claimed@{domain}", PAGE)
    db.session.commit()


def _import_row_by_row(data: bytes, options: importers.ImportOptions) -> importers.ImportSummary:
    """The reference: every valid row placed one at a time (the importer before chunks)."""
    mailing_list = importers.find_list(options.list_slug)
    text, encoding = importers.decode(data)
    summary = importers.ImportSummary(list_slug=mailing_list.slug, encoding=encoding)
    rows, seen = [], set()
    for row in importers.read_rows(text, options, summary):
        if isinstance(row, importers.Rejected):
            summary.rejected.append(row)
        elif row.email not in seen:
            seen.add(row.email)
            rows.append(row)
        else:
            summary.duplicates += 1
    source = wording.NETWORKING_SOURCE if summary.format == importers.LINKEDIN else options.source
    state = "invited" if options.basis == "none" else "subscribed"
    via = Via(channel=Channel.IMPORT, actor=options.added_by)
    erased = suppression.suppressed_addresses([row.email for row in rows])
    for row in rows:
        provenance = consent.Provenance(
            source=source,
            added_by=options.added_by,
            basis=options.basis,
            evidence=row.evidence,
            basis_date=row.basis_date,
            relationship_ended_on=row.relationship_ended_on,
        )
        known = addresses.owned_addresses([row.email]).get(row.email)
        stored = known.contact.jurisdiction if known is not None else None
        try:
            provenance.checked(mailing_list, state, row.jurisdiction or stored)
        except consent.ConsentError as error:
            summary.rejected.append(importers.Rejected(row.line, str(error), row.values))
            continue
        if row.email in erased:
            summary.suppressed += 1
            continue
        outcome = importers._import_row(row, known, mailing_list, state, provenance, via)
        importers._count(summary, outcome, state)
    summary.rejected.sort(key=lambda rejected: rejected.line)
    return summary


def _run(importer, domain: str, tag: str) -> list:
    summaries = []
    for text, slug, basis, source in IMPORTS:
        options = importers.ImportOptions(
            list_slug=f"{slug}-{tag}",
            source=source,
            basis=basis,
            added_by="Dana Reyes",
            skip_invalid=True,
            filename="contacts.csv",
        )
        summary = importer(text.replace("example.com", domain).encode(), options)
        db.session.commit()
        summaries.append(
            (summary.counts(), [(rejected.line, rejected.reason) for rejected in summary.rejected])
        )
    return summaries


def _content(domain: str, tag: str) -> dict:
    """What the database holds for one run, without ids, random tokens or times of writing
    (and with its domain and list suffix taken out)."""
    fresh()
    slugs = {
        list_id: slug.removesuffix(f"-{tag}")
        for list_id, slug in db.session.execute(db.select(MailingList.id, MailingList.slug))
        if slug.endswith(f"-{tag}")
    }
    content = {}
    for contact in db.session.execute(db.select(Contact)).scalars():
        emails = [a.email for a in contact.addresses]
        if not emails[0].endswith(f"@{domain}"):
            continue
        key = contact.name
        subscriptions = db.session.execute(
            db.select(Subscription).filter_by(contact_id=contact.id)
        ).scalars()
        events = db.session.execute(
            db.select(ConsentEvent).filter_by(contact_id=contact.id).order_by(ConsentEvent.id)
        ).scalars()
        content[key] = {
            "contact": (
                contact.jurisdiction,
                contact.language,
                contact.business_contact,
                contact.erased_at,
            ),
            "addresses": sorted(
                (
                    a.email.removesuffix(domain),
                    a.kind,
                    a.subscriber_type,
                    a.verified_at is not None,
                )
                for a in contact.addresses
            ),
            "subscriptions": sorted(
                (
                    slugs[s.list_id],
                    s.state,
                    s.basis,
                    s.source,
                    s.added_by,
                    s.evidence,
                    s.basis_date,
                    s.relationship_ended_on,
                    s.expires_at,
                    s.disputed_at is not None,
                    s.deliver_to_business,
                )
                for s in subscriptions
            ),
            "events": [
                (
                    slugs.get(e.list_id),
                    e.action,
                    e.from_state,
                    e.to_state,
                    e.basis,
                    e.source,
                    e.channel,
                    e.actor,
                    e.jurisdiction,
                    e.language,
                    e.notice_version,
                    e.evidence,
                    e.detail and e.detail.replace(domain, "D"),
                    e.prev_hash is None,
                )
                for e in events
            ],
        }
    return content


def test_bulk_import_writes_what_row_by_row_placing_writes(app, make, runner):
    _set_up(make, "a.example", "a")
    _set_up(make, "b.example", "b")
    by_row = _run(_import_row_by_row, "a.example", "a")
    bulk = _run(importers.import_contacts, "b.example", "b")
    expected, found = _content("a.example", "a"), _content("b.example", "b")

    assert bulk == by_row
    assert found == expected
    # The new contacts were made in bulk, each with one event starting its chain.
    assert [event[1] for event in found["New One"]["events"]] == ["language_set", "subscribe"]
    assert found["New Two"]["events"][0][1:4] == ("subscribe", "none", "subscribed")
    assert found["Claimer"]["events"][-1][1] == "business_address_removed"
    assert found["Many 24"]["contact"][0] == "CA"
    report = ledger.verify_all()
    assert report.ok, [str(problem) for problem in report.problems]
    assert report.contacts_checked == len(found) + len(expected)
    result = runner.invoke(args=["verify-log"])
    assert result.exit_code == 0, result.output
    assert "Consent log intact" in result.output


def test_bulk_import_spans_chunks_all_or_nothing(app, make, runner, monkeypatch, tmp_path):
    make.list("insights")
    monkeypatch.setattr(importers, "CHUNK_ROWS", 7)
    rows = "".join(f"p{n}@example.com,P {n}\n" for n in range(40))
    path = tmp_path / "contacts.csv"
    # One bad row near the end: nothing is written, though earlier chunks were placed.
    path.write_text("email,name\n" + rows + "broken,Broken\n")
    args = ["import-contacts", str(path), "--list", "insights", "--source", "sheet"]
    args += ["--basis", "express", "--added-by", "Dana Reyes"]

    refused = runner.invoke(args=args)

    assert refused.exit_code == 1
    assert "line 42" in refused.output
    fresh()
    assert db.session.execute(db.select(db.func.count()).select_from(Contact)).scalar_one() == 0

    result = runner.invoke(args=[*args, "--skip-invalid"])

    assert result.exit_code == 0, result.output
    assert "created 40" in result.output
    assert "rows" in result.output  # the progress line on stderr
    fresh()
    assert db.session.execute(db.select(db.func.count()).select_from(Address)).scalar_one() == 40
    assert ledger.verify_all().ok


def test_a_refused_file_leaves_nothing_even_after_its_first_chunks(app, make, monkeypatch):
    make.list("insights")
    monkeypatch.setattr(importers, "CHUNK_ROWS", 3)
    rows = "".join(f"q{n}@example.com\n" for n in range(10))
    options = importers.ImportOptions(
        list_slug="insights", source="sheet", basis="express", added_by="Dana Reyes"
    )

    with pytest.raises(importers.InvalidRows):
        importers.import_contacts(f"email\n{rows}broken\n".encode(), options)
    db.session.commit()  # what a door might do next: the refusal already left nothing

    assert db.session.execute(db.select(db.func.count()).select_from(Contact)).scalar_one() == 0
    assert db.session.execute(db.select(ConsentEvent)).first() is None
