"""The contact's data rights: download my data (Art. 15, 20) and delete my data (Art. 17)."""

from __future__ import annotations

import json
import re
from datetime import UTC

import pytest
import sqlalchemy as sa
from helpers import csrf_token, events_of, fresh, state_of
from jsonschema import Draft202012Validator

from preference_center import consent, data_export, erasure, ledger, mailer, suppression, tokens
from preference_center.consent import Provenance, Via
from preference_center.extensions import db
from preference_center.models import Address, Contact, OutboxMessage, Suppression, utcnow

BASE = "https://prefs.example.test"
IP, AGENT = "203.0.113.5", "UA-Pat/1.0"
PAGE = Via(channel="preference_page", actor="contact", ip=IP, user_agent=AGENT)


@pytest.fixture
def pat(make):
    """A contact with a personal and a business address, on three lists in three states."""
    notes = make.list("notes", audience="personal")
    insights = make.list("insights")
    offers = make.list("offers")
    contact = make.contact("pat@example.com", name="Pat Doe")
    contact.addresses.append(
        Address(email="pat@work.example", kind="business", verified_at=utcnow())
    )
    db.session.commit()
    make.subscription(contact, notes, basis="personal", evidence="Met at the harbour café")
    disputed = make.subscription(contact, insights, evidence="Ticked the box at the fair")
    make.subscription(contact, offers, state="invited", basis="none", source="networking import")
    consent.dispute(disputed, PAGE, "I never agreed to this, Pat Doe")
    db.session.commit()
    return contact


def deliver(smtp) -> list:
    fresh()
    mailer.deliver_due()
    return smtp.messages


def link_path(message, folder: str) -> str:
    match = re.search(rf"{re.escape(BASE)}(/{folder}/[^\s\"<]+)", message.text())
    assert match, f"no /{folder}/ link in the email"
    return match.group(1)


def ask(client, manage_path, contact, what: str, **headers):
    """Press a button of the "Your data" section of the preference page."""
    page = client.get(manage_path(contact))
    token = manage_path(contact).rsplit("/", 1)[-1]
    return client.post(
        f"/p/{token}/your-data/{what}", data={"csrf_token": csrf_token(page.text)}, headers=headers
    )


def counts() -> tuple[int, int, int]:
    fresh()
    return tuple(
        db.session.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar()
        for table in ("consent_events", "addresses", "suppressions")
    )


# --- download my data ----------------------------------------------------------------


def test_the_page_offers_both_rights_as_real_forms(client, pat, manage_path):
    html = client.get(manage_path(pat)).text

    section = html[html.index('id="your-data"') :]
    assert 'action="/p/' in section and "/your-data/export" in section
    assert "Email me a link to download my data" in section
    assert "Email me a link to delete my data" in section
    assert "p***@example.com" in section


def test_the_download_link_is_emailed_only_to_the_address_on_file(client, pat, manage_path, smtp):
    before = counts()

    response = ask(client, manage_path, pat, "export")

    assert response.status_code == 303
    assert response.headers["Location"].endswith("#your-data")
    assert "We sent a link to p***@example.com" in client.get(response.headers["Location"]).text
    (message,) = deliver(smtp)
    assert message.rcpt_tos == ["pat@example.com"]
    assert message.message["Subject"] == "Your data: download link"
    assert "works for 24 hours" in message.text()
    assert link_path(message, "download") in message.html()
    assert counts() == before  # asking for a link writes nothing but the mail


def test_asking_through_htmx_answers_with_the_section(client, pat, manage_path, smtp):
    response = ask(client, manage_path, pat, "export", **{"HX-Request": "true"})

    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section id="your-data"')
    assert "We sent a link to p***@example.com" in response.text
    assert len(deliver(smtp)) == 1


def test_the_export_validates_against_its_schema_and_carries_every_event(
    client, pat, manage_path, smtp
):
    ask(client, manage_path, pat, "export")
    path = link_path(deliver(smtp)[0], "download")
    before = counts()

    page = client.get(path)
    download = client.get(path + "/data.json")

    assert page.status_code == 200 and f'href="{path}/data.json"' in page.text
    assert download.status_code == 200 and download.mimetype == "application/json"
    assert download.headers["Content-Disposition"].startswith('attachment; filename="my-data-')
    assert download.headers["Cache-Control"] == "no-store"
    document = download.json
    Draft202012Validator.check_schema(data_export.schema())
    errors = [e.message for e in Draft202012Validator(data_export.schema()).iter_errors(document)]
    assert errors == []
    assert counts() == before  # a download is a read

    assert document["contact"]["id"] == pat.public_id and document["contact"]["name"] == "Pat Doe"
    assert [(a["email"], a["kind"]) for a in document["addresses"]] == [
        ("pat@example.com", "personal"),
        ("pat@work.example", "business"),
    ]
    subscriptions = {s["list"]["slug"]: s for s in document["subscriptions"]}
    assert {slug: s["state"] for slug, s in subscriptions.items()} == {
        "notes": "subscribed",
        "insights": "unsubscribed",
        "offers": "invited",
    }
    assert subscriptions["notes"]["provenance"]["evidence"] == "Met at the harbour café"
    assert subscriptions["offers"]["provenance"]["source"] == "networking import"
    assert subscriptions["insights"]["dispute_text"] == "I never agreed to this, Pat Doe"

    events = events_of(pat)
    exported = document["consent_log"]["events"]
    assert [e["event_id"] for e in exported] == [e.id for e in events]
    assert [e["hash"] for e in exported] == [e.hash for e in events]
    assert document["consent_log"]["chain_head"] == events[-1].hash
    assert exported[-1]["ip"] == IP and exported[-1]["detail"] == "I never agreed to this, Pat Doe"
    for event in exported:  # the contact can recompute every hash and digest from the file
        assert ledger.event_hash(event) == event["hash"]
        assert ledger.personal_digest(event["personal_salt"], event) == event["personal_digest"]


def test_one_kantara_receipt_per_consent(client, pat, manage_path, smtp):
    ask(client, manage_path, pat, "export")
    path = link_path(deliver(smtp)[0], "download")

    receipts = {r["list"]: r for r in client.get(path + "/data.json").json["receipts"]}

    assert set(receipts) == {"notes", "insights", "offers"}
    notes, insights, offers = receipts["notes"], receipts["insights"], receipts["offers"]
    subscribe = next(e for e in events_of(pat) if e.mailing_list.slug == "notes")
    assert notes["version"] == "KI-CR-v1.1.0" and notes["piiPrincipalId"] == pat.public_id
    assert notes["consentTimestamp"] == int(subscribe.occurred_at.replace(tzinfo=UTC).timestamp())
    assert notes["eventHash"] == subscribe.hash and notes["dpvStatus"] == "dpv:ConsentGiven"
    assert notes["piiControllers"][0]["piiController"] == "Harbor Financial"
    purpose = insights["services"][0]["purposes"][0]
    assert (purpose["consentType"], purpose["purposeCategory"]) == ("EXPLICIT", ["6 - Marketing"])
    assert "one-click unsubscribe" in purpose["termination"]
    assert insights["dpvStatus"] == "dpv:ConsentWithdrawn"
    assert (offers["state"], offers["dpvStatus"]) == ("invited", "dpv:ConsentRequested")
    assert len({r["consentReceiptID"] for r in receipts.values()}) == 3
    # The same consent keeps its receipt id from one export to the next.
    again = {r["list"]: r for r in client.get(path + "/data.json").json["receipts"]}
    assert again["notes"]["consentReceiptID"] == notes["consentReceiptID"]


def test_a_broken_document_fails_the_schema(pat, app):
    document = data_export.build(pat)
    validator = Draft202012Validator(data_export.schema())
    assert list(validator.iter_errors(document)) == []

    document["consent_log"]["events"][0]["hash"] = "not a hash"
    del document["receipts"][0]["piiControllers"][0]["email"]

    assert len(list(validator.iter_errors(document))) == 2


def test_the_download_link_expires_and_no_other_link_opens_it(client, pat, app, manage_path):
    download = tokens.sign(tokens.DATA_EXPORT, pat)
    others = [
        tokens.sign(tokens.MANAGE, pat),
        tokens.sign(tokens.ERASE, pat),
        tokens.sign(tokens.CONFIRM, pat, l="notes"),
        download[:-2] + ("AA" if not download.endswith("AA") else "BB"),
    ]
    assert client.get(f"/download/{download}/data.json").status_code == 200

    for token in others:
        assert client.get(f"/download/{token}").status_code == 404
        assert client.get(f"/download/{token}/data.json").status_code == 404
    app.config["DATA_EXPORT_LINK_MAX_AGE_DAYS"] = -1
    expired = client.get(f"/download/{download}/data.json")
    assert expired.status_code == 404 and "It may be old or incomplete" in expired.text
    assert "pat@example.com" not in expired.text


def test_reset_links_also_revokes_the_download_link(client, pat):
    download = tokens.sign(tokens.DATA_EXPORT, pat)
    pat.token_version += 1
    db.session.commit()

    assert client.get(f"/download/{download}/data.json").status_code == 404


# --- delete my data ------------------------------------------------------------------


def all_text_in_the_database() -> str:
    """Every value of every row of every table, for a search for what should be gone."""
    fresh()
    metadata = sa.MetaData()
    metadata.reflect(db.engine)
    return "\n".join(
        repr(tuple(row))
        for table in metadata.sorted_tables
        for row in db.session.execute(sa.select(table))
    )


def test_erasure_end_to_end(client, pat, manage_path, smtp):
    manage = manage_path(pat)
    download = tokens.sign(tokens.DATA_EXPORT, pat)
    ask(client, manage_path, pat, "erase")
    (message,) = deliver(smtp)
    assert message.rcpt_tos == ["pat@example.com"]
    path = link_path(message, "erase")
    assert path.startswith("/erase/")
    before = counts()

    page = client.get(path)
    client.head(path)

    assert page.status_code == 200 and "Delete my data" in page.text
    assert counts() == before  # opening the link erased nothing
    db.session.refresh(pat)
    assert pat.erased_at is None and pat.name == "Pat Doe"

    done = client.post(path, data={"csrf_token": csrf_token(page.text)})

    assert done.status_code == 200 and "Your data is deleted" in done.text
    fresh()
    db.session.refresh(pat)
    assert pat.erased_at is not None and pat.name is None and pat.addresses == []
    events = events_of(pat)
    assert [e.action for e in events][-3:] == ["withdraw", "withdraw", "erase"]
    erase_event = events[-1]
    assert (erase_event.channel, erase_event.actor) == ("preference_page", "contact")
    for event in events:
        assert (event.ip, event.user_agent, event.evidence, event.detail) == (None,) * 4
        assert event.personal_salt is None and len(event.personal_digest) == 64
    assert {s.state for s in pat.subscriptions} == {"unsubscribed"}
    assert {s.evidence for s in pat.subscriptions} == {""}
    report = ledger.verify_all()
    assert report.ok, report.problems
    tombstones = db.session.execute(sa.select(Suppression)).scalars().all()
    assert sorted(t.email_hash for t in tombstones) == sorted(
        suppression.suppression_key(e) for e in ("pat@example.com", "pat@work.example")
    )
    assert {(t.scope, t.reason, t.created_at.date()) for t in tombstones} == {
        ("all", "erasure", utcnow().date())
    }
    leftovers = all_text_in_the_database()
    for personal in ("pat@example.com", "pat@work.example", "Pat Doe", IP, AGENT, "café"):
        assert personal not in leftovers
    # Every link the person had is dead, and so is the erase link itself.
    for dead in (manage, path, f"/download/{download}/data.json"):
        assert client.get(dead).status_code == 404


def test_an_erased_address_cannot_be_put_back_on_any_list(client, pat, make, manage_path, smtp):
    ask(client, manage_path, pat, "erase")
    path = link_path(deliver(smtp)[0], "erase")
    page = client.get(path)
    client.post(path, data={"csrf_token": csrf_token(page.text)})
    insights = consent.find_subscription(pat, make.list("insights")).mailing_list

    returning = make.contact(" PAT@Example.com ", name="Pat Again")
    subscription, outcome = consent.place(
        returning,
        insights,
        "subscribed",
        Provenance(source="CSV import", added_by="Dana", basis="express", evidence="row 2"),
        Via("import", "cli"),
    )
    db.session.commit()

    assert (subscription, outcome) == (None, "suppressed")
    assert events_of(returning) == [] and state_of(returning, insights) is None
    assert suppression.suppressed_address("pat@work.example")
    assert ledger.verify_all().ok


def test_erase_needs_the_button_and_its_csrf_token(client, pat):
    path = f"/erase/{tokens.sign(tokens.ERASE, pat)}"

    refused = client.post(path)

    assert refused.status_code == 400
    fresh()
    db.session.refresh(pat)
    assert pat.erased_at is None and len(pat.addresses) == 2


def test_only_an_erase_link_erases(client, pat, app):
    page = client.get(f"/erase/{tokens.sign(tokens.ERASE, pat)}")
    form = {"csrf_token": csrf_token(page.text)}

    for token in (tokens.sign(tokens.MANAGE, pat), tokens.sign(tokens.DATA_EXPORT, pat)):
        assert client.get(f"/erase/{token}").status_code == 404
        assert client.post(f"/erase/{token}", data=form).status_code == 404
    app.config["ERASE_LINK_MAX_AGE_DAYS"] = -1
    assert client.post(f"/erase/{tokens.sign(tokens.ERASE, pat)}", data=form).status_code == 404

    fresh()
    db.session.refresh(pat)
    assert pat.erased_at is None


def test_erasing_twice_changes_nothing_more(pat, app):
    first = erasure.erase(pat, PAGE)
    db.session.commit()
    events = len(events_of(pat))

    second = erasure.erase(pat, PAGE)
    db.session.commit()

    assert (first.withdrawn, first.tombstones) == (2, 2)  # notes and offers; insights was off
    assert first.events_minimised == events
    assert (second.withdrawn, second.tombstones, second.events_minimised) == (0, 0, 0)
    assert len(events_of(pat)) == events


def test_erasure_removes_the_mail_queued_for_the_person(pat, app):
    mailer.queue("note", "pat@example.com", "Hello", "data_export", contact=pat, link="x", hours=1)
    db.session.commit()

    erasure.erase(pat, PAGE)
    db.session.commit()

    assert db.session.execute(sa.select(OutboxMessage)).first() is None


def test_the_consent_log_export_of_an_erased_contact_still_checks_out(pat, app, runner):
    erasure.erase(pat, PAGE)
    db.session.commit()

    result = runner.invoke(args=["export-log", "--format", "ndjson", "--contact", pat.public_id])

    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows and {r["email"] for r in rows} == {None}
    assert {r["ip"] for r in rows} == {None} and {r["personal_salt"] for r in rows} == {None}
    for row in rows:
        assert ledger.event_hash(row) == row["hash"]


# --- suppression ---------------------------------------------------------------------


def test_a_tombstone_is_a_keyed_hash_of_the_normalised_address(app):
    suppression.add_tombstone(" Gone@Example.COM ")
    suppression.add_tombstone("gone@example.com")  # idempotent
    db.session.commit()

    stored = db.session.execute(sa.select(Suppression)).scalar_one()
    assert stored.email_hash == suppression.suppression_key("gone@example.com")
    assert re.fullmatch(r"[0-9a-f]{64}", stored.email_hash) and "gone" not in stored.email_hash
    assert suppression.suppressed_address("GONE@example.com")
    assert not suppression.suppressed_address("here@example.com")
    assert not suppression.suppressed_address(None)
    app.config["SECRET_KEY"] = "another key"
    assert not suppression.suppressed_address("gone@example.com")
    app.config["SUPPRESSION_KEY"] = "test-secret-key-" + "x" * 32  # the old secret, kept
    assert suppression.suppressed_address("gone@example.com")


def test_place_refuses_a_contact_whose_address_is_suppressed(make):
    insights = make.list("insights")
    contact = make.contact("back@example.com")
    suppression.add_tombstone("back@example.com")
    db.session.commit()

    subscription, outcome = consent.place(
        contact,
        insights,
        "invited",
        Provenance(source="networking import", added_by="Dana", basis="none"),
        Via("import", "cli"),
    )

    assert (subscription, outcome) == (None, "suppressed")
    assert events_of(contact) == []
    assert db.session.execute(sa.select(Contact).filter_by(id=contact.id)).scalar_one()


def test_the_api_reports_a_contact_with_an_erased_address_as_suppressed(client, make, api_auth):
    make.list("market-insights")
    contact = make.contact("lee@example.com")
    contact.addresses.append(Address(email="lee@old-job.example", kind="business"))
    suppression.add_tombstone("lee@old-job.example")
    db.session.commit()

    response = client.post(
        "/api/v1/contacts",
        headers=api_auth("contacts:write"),
        json={
            "email": "lee@example.com",
            "subscriptions": [
                {
                    "list": "market-insights",
                    "state": "subscribed",
                    "source": "signup form",
                    "added_by": "Dana Reyes",
                    "basis": "express",
                    "evidence": "ticked the box",
                }
            ],
        },
    )

    assert response.status_code == 409
    assert response.json["error"]["code"] == "suppressed"
    assert "was erased" in response.json["error"]["message"]
    assert events_of(contact) == []


def test_after_erasure_import_contacts_reports_the_address_as_suppressed(
    client, pat, manage_path, smtp, runner, tmp_path
):
    ask(client, manage_path, pat, "erase")
    path = link_path(deliver(smtp)[0], "erase")
    client.post(path, data={"csrf_token": csrf_token(client.get(path).text)})
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text("email,name\nPat@Example.com,Pat Doe\npat@work.example,Pat\n")
    before = counts()

    fresh()  # release SQLite's write lock before the command runs
    result = runner.invoke(
        args=["import-contacts", str(csv_file), "--list", "insights", "--source", "fair",
              "--basis", "express", "--added-by", "Dana Reyes"]
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "created 0, updated 0, invited 0, unchanged 0, suppressed 2, rejected 0" in (
        result.output
    )
    assert counts() == before
    assert "pat@example.com" not in all_text_in_the_database()
