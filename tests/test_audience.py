"""The audience of a list: exactly the may-send set, streamed from one snapshot."""

from __future__ import annotations

import csv
import http.client
import io
import json
from datetime import date, timedelta
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from preference_center import audience, consent, erasure, may_send
from preference_center.consent import Via
from preference_center.extensions import db
from preference_center.models import (
    BUSINESS_DECLINED,
    Address,
    Contact,
    Subscription,
    new_public_id,
    utcnow,
)

VIA = Via("admin", "test")


@pytest.fixture
def every_state(app, make):
    """Contacts on a business and a personal list in every state there is."""
    insights = make.list("market-insights")
    notes = make.list("personal-notes", audience="personal")
    lists = (insights, notes)
    people: dict[str, Contact] = {}

    def person(key: str, *, states=("subscribed", "subscribed"), **kw) -> Contact:
        contact = make.contact(f"{key}@example.com", name=key.title())
        for mailing_list, state in zip(lists, states, strict=True):
            if state is not None:
                make.subscription(contact, mailing_list, state=state, **kw)
        people[key] = contact
        return contact

    person("subscribed")
    person("invited", states=("invited", "invited"))
    pending = person("pending", states=(None, None))
    for mailing_list in lists:
        consent.opt_in(pending, mailing_list, VIA, evidence="ticked")
    recent = date.today() - timedelta(days=30)
    person("implied", states=("subscribed", None), basis="implied_purchase", basis_date=recent)
    lapsed = person(
        "lapsed", states=("subscribed", None), basis="implied_inquiry", basis_date=recent
    )
    # Time passes: the implied consent ran out, and nobody ran expire-consent yet.
    consent.find_subscription(lapsed, insights).expires_at = utcnow() - timedelta(minutes=1)
    expired = person(
        "expired", states=("subscribed", None), basis="implied_inquiry", basis_date=recent
    )
    consent.find_subscription(expired, insights).expires_at = utcnow() - timedelta(days=1)
    consent.expire_due()
    unsubscribed = person("unsubscribed")
    consent.withdraw_everything(unsubscribed, VIA)
    disputed = person("disputed")
    consent.dispute(consent.find_subscription(disputed, insights), VIA, "never asked")
    declined = person("declined")
    consent.decline_business_contact(declined, VIA)
    # A state only a direct edit makes, so the declined rule is tested on its own.
    person("declined-but-subscribed").business_contact = BUSINESS_DECLINED

    routed = person("routed")
    routed.addresses.append(
        Address(email="routed@work.example", kind="business", verified_at=utcnow())
    )
    routed.business_mail_to_business_address = True
    consent.find_subscription(routed, notes).deliver_to_business = True
    unverified = person("unverified")
    unverified.addresses.append(Address(email="unverified@work.example", kind="business"))
    unverified.business_mail_to_business_address = True
    # Only an unverified business address: it identifies nobody, so no audience has it.
    only_work = Contact(name="Only Work")
    only_work.addresses.append(Address(email="only@work.example", kind="business"))
    db.session.add(only_work)
    db.session.flush()
    for mailing_list in lists:
        make.subscription(only_work, mailing_list)
    people["only-work"] = only_work

    erasure.erase(person("erased"), VIA)
    bounced = person("bounced")
    consent.mark_undeliverable(bounced.addresses[0], VIA, "hard bounce", detail="test")
    bounced_work = person("bounced-work")
    bounced_work.addresses.append(
        Address(email="bounced@work.example", kind="business", verified_at=utcnow())
    )
    bounced_work.business_mail_to_business_address = True
    db.session.flush()
    consent.mark_undeliverable(bounced_work.addresses[1], VIA, "hard bounce", detail="test")
    make.contact("stranger@example.com")  # on no list at all
    db.session.commit()
    return lists, people


def may_send_set(slug: str) -> set[tuple[str, str]]:
    """(address, contact) for every address of every contact that may-send allows."""
    allowed = set()
    rows = db.session.execute(
        db.select(Address.email, Contact.public_id).join(Contact, Contact.id == Address.contact_id)
    ).all()
    for email, public_id in rows:
        if may_send.check(email, slug).allowed:
            allowed.add((email, public_id))
    return allowed


def audience_set(slug: str) -> set[tuple[str, str]]:
    mailing_list = audience.find_list(slug)
    return {(row["email"], row["contact"]) for row in audience.recipients(mailing_list)}


def test_the_audience_is_exactly_the_may_send_set_on_every_state(every_state):
    (insights, notes), people = every_state
    for slug in (insights.slug, notes.slug):
        expected = may_send_set(slug)
        assert audience_set(slug) == expected
    # The data really holds both sides of each rule (hand-checked lists).
    business = {email for email, _ in audience_set(insights.slug)}
    assert business == {
        "subscribed@example.com",
        "implied@example.com",
        "routed@work.example",
        "unverified@example.com",
    }
    personal = {email for email, _ in audience_set(notes.slug)}
    assert personal == {
        "subscribed@example.com",
        "declined@example.com",
        "declined-but-subscribed@example.com",
        "routed@work.example",
        "unverified@example.com",
        "disputed@example.com",  # disputed the business list only
        "bounced-work@example.com",  # personal lists still go to the personal address
    }
    answer = may_send.check("bounced@example.com", insights.slug)
    assert (answer.allowed, answer.status) == (False, "undeliverable")
    assert "bounced" in answer.reason


def test_rows_carry_working_links_and_headers(every_state, client):
    (insights, _), people = every_state
    [row] = [r for r in audience.recipients(insights) if r["email"] == "implied@example.com"]
    assert row["contact"] == people["implied"].public_id
    assert row["name"] == "Implied"
    assert row["basis"] == "implied_purchase"
    assert row["expires_at"].endswith("Z")
    assert row["list_unsubscribe"] == f"<{row['unsubscribe_url']}>"
    assert row["list_unsubscribe_post"] == "List-Unsubscribe=One-Click"
    path = urlsplit(row["manage_url"]).path
    assert client.get(path).status_code == 200
    one_click = client.post(
        urlsplit(row["unsubscribe_url"]).path, data={"List-Unsubscribe": "One-Click"}
    )
    assert one_click.status_code == 200
    assert "implied@example.com" not in {r["email"] for r in audience.recipients(insights)}


def test_ndjson_csv_and_the_cli_agree(every_state, client, api_auth, runner, tmp_path):
    (insights, _), _people = every_state
    auth = api_auth("consent:read")
    ndjson = client.get("/api/v1/lists/market-insights/audience", headers=auth)
    assert ndjson.status_code == 200
    assert ndjson.mimetype == "application/x-ndjson"
    from_ndjson = [json.loads(line) for line in ndjson.get_data(as_text=True).splitlines()]
    assert {(r["email"], r["contact"]) for r in from_ndjson} == may_send_set(insights.slug)

    as_csv = client.get("/api/v1/lists/market-insights/audience?format=csv", headers=auth)
    assert as_csv.mimetype == "text/csv"
    from_csv = list(csv.DictReader(io.StringIO(as_csv.get_data(as_text=True))))
    assert list(from_csv[0]) == list(audience.FIELDS)

    def comparable(rows):
        # Tokens carry a timestamp: compare everything else, and the link's path prefix.
        return [
            (r["email"], r["contact"], r["name"] or "", r["basis"], r["expires_at"] or "")
            for r in rows
        ]

    assert comparable(from_csv) == comparable(from_ndjson)
    result = runner.invoke(args=["audience", "market-insights"])
    assert result.exit_code == 0, result.output
    from_cli = [json.loads(line) for line in result.output.splitlines()]
    assert comparable(from_cli) == comparable(from_ndjson)
    out = tmp_path / "audience.csv"
    result = runner.invoke(args=["audience", "market-insights", "--format", "csv", "-o", str(out)])
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8", newline="") as file:
        assert comparable(csv.DictReader(file)) == comparable(from_ndjson)


def test_resume_after_a_contact_gives_the_rest(every_state, client, api_auth):
    (insights, _), _ = every_state
    auth = api_auth("consent:read")
    whole = client.get("/api/v1/lists/market-insights/audience", headers=auth)
    rows = [json.loads(line) for line in whole.get_data(as_text=True).splitlines()]
    assert len(rows) > 2
    after = rows[1]["contact"]
    rest = client.get(f"/api/v1/lists/market-insights/audience?after={after}", headers=auth)
    resumed = [json.loads(line) for line in rest.get_data(as_text=True).splitlines()]
    assert [(r["email"], r["contact"]) for r in resumed] == [
        (r["email"], r["contact"]) for r in rows[2:]
    ]
    bad = client.get("/api/v1/lists/market-insights/audience?after=nobody", headers=auth)
    assert bad.status_code == 400
    assert bad.get_json()["error"]["code"] == "bad_cursor"


def test_unknown_list_format_and_scope(app, make, client, api_auth):
    make.list("market-insights")
    auth = api_auth("consent:read")
    missing = client.get("/api/v1/lists/nope/audience", headers=auth)
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "unknown_list"
    wrong = client.get("/api/v1/lists/market-insights/audience?format=xml", headers=auth)
    assert wrong.status_code == 400
    no_scope = client.get("/api/v1/lists/market-insights/audience", headers=api_auth("links"))
    assert no_scope.status_code == 403
    assert client.get("/api/v1/lists/market-insights/audience").status_code == 401


def bulk_subscribers(mailing_list, count: int) -> None:
    """Many subscribed contacts at once (Core inserts; the rules are tested above)."""
    now = utcnow()
    contacts = [
        {"public_id": new_public_id(), "name": f"Reader {n}", "token_version": 1,
         "business_contact": "allowed", "business_mail_to_business_address": False,
         "receipts_enabled": True, "created_at": now}
        for n in range(count)
    ]  # fmt: skip
    db.session.execute(sa.insert(Contact), contacts)
    ids = dict(
        db.session.execute(
            db.select(Contact.public_id, Contact.id).where(
                Contact.public_id.in_([c["public_id"] for c in contacts])
            )
        ).all()
    )
    db.session.execute(
        sa.insert(Address),
        [
            {"contact_id": ids[c["public_id"]], "email": f"reader{n}@example.com",
             "kind": "personal", "created_at": now, "soft_bounces": 0}
            for n, c in enumerate(contacts)
        ],
    )  # fmt: skip
    db.session.execute(
        sa.insert(Subscription),
        [
            {"contact_id": ids[c["public_id"]], "list_id": mailing_list.id, "state": "subscribed",
             "source": "signup form", "added_by": "test", "added_at": now, "basis": "express",
             "evidence": "", "deliver_to_business": False, "updated_at": now}
            for c in contacts
        ],
    )  # fmt: skip
    db.session.commit()


def test_the_stream_reads_one_snapshot(app, make):
    insights = make.list("market-insights")
    bulk_subscribers(insights, 2500)
    rows = audience.recipients(insights)
    first = next(rows)
    # While the stream is open, the last reader withdraws and is erased.
    last = db.session.execute(db.select(Contact).order_by(Contact.id.desc()).limit(1)).scalar_one()
    erasure.erase(last, VIA)
    db.session.commit()
    rest = list(rows)
    assert len(rest) + 1 == 2500
    assert rest[-1]["contact"] == last.public_id  # the snapshot still holds them
    assert first["email"] == "reader0@example.com"
    assert last.public_id not in {r["contact"] for r in audience.recipients(insights)}


def test_first_bytes_arrive_before_the_whole_set_is_read(app, make, api_auth, live_server):
    insights = make.list("market-insights")
    bulk_subscribers(insights, 3000)
    auth = api_auth("consent:read")
    url = urlsplit(live_server.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    connection.request("GET", "/api/v1/lists/market-insights/audience", headers=auth)
    response = connection.getresponse()
    assert response.status == 200
    first = json.loads(response.readline())
    assert first["email"] == "reader0@example.com"
    if db.engine.dialect.name == "postgresql":
        # The server is still reading: its transaction is open on a server-side cursor.
        streaming = db.session.execute(
            sa.text(
                "SELECT state, query FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
            )
        ).all()
        db.session.commit()
        assert any(
            query.lstrip().upper().startswith(("FETCH", "DECLARE")) for _, query in streaming
        )
    rest = response.read().decode().splitlines()
    connection.close()
    assert len(rest) == 2999
    assert json.loads(rest[-1])["email"] == "reader2999@example.com"


def test_each_row_carries_the_jurisdiction_the_consent_answer_gives(app, make):
    insights = make.list("market-insights")
    for email, where in (
        ("ca@example.com", "CA"),
        ("gb@example.com", "GB"),
        ("nowhere@example.com", None),
    ):
        make.subscription(make.contact(email, jurisdiction=where), insights)
    app.config["DEFAULT_JURISDICTION"] = "US"
    rows = {row["email"]: row["jurisdiction"] for row in audience.recipients(insights)}
    assert rows == {"ca@example.com": "CA", "gb@example.com": "GB", "nowhere@example.com": "US"}
    for email, where in rows.items():
        assert may_send.check(email, insights.slug).jurisdiction == where


def test_each_row_carries_the_language_the_consent_answer_gives(app, make, client, api_auth):
    insights = make.list("market-insights")
    for email, language in (
        ("fr@example.com", "fr"),
        ("ar@example.com", "ar"),
        ("unset@example.com", None),
    ):
        contact = make.contact(email)
        if language:
            consent.set_language(contact, language, Via("admin", "test"))
        make.subscription(contact, insights)
    app.config["DEFAULT_LANGUAGE"] = "de"
    auth = api_auth("consent:read")
    rows = {row["email"]: row["language"] for row in audience.recipients(insights)}
    assert rows == {"fr@example.com": "fr", "ar@example.com": "ar", "unset@example.com": "de"}
    for email, language in rows.items():
        assert may_send.check(email, insights.slug).language == language
        answer = client.get(
            "/api/v1/consent", query_string={"email": email, "list": insights.slug}, headers=auth
        ).get_json()
        assert answer["language"] == language
    # An address nobody has: no language at all, as no jurisdiction of its own.
    assert may_send.check("nobody@example.com", insights.slug).language is None
    streamed = client.get(f"/api/v1/lists/{insights.slug}/audience", headers=auth)
    assert {
        json.loads(line)["language"] for line in streamed.get_data(as_text=True).splitlines()
    } == {
        "fr",
        "ar",
        "de",
    }


def test_paused_lists_stay_out_and_each_row_carries_its_cadence(app, make):
    insights = make.list("market-insights")
    insights.cadences = "every issue\nmonthly digest"
    people = {}
    for key in ("paused", "business-paused", "pause-over", "digest", "plain"):
        people[key] = make.contact(f"{key}@example.com")
        make.subscription(people[key], insights)
    db.session.commit()
    consent.pause(consent.find_subscription(people["paused"], insights), 30, VIA)
    consent.pause_business(people["business-paused"], 90, VIA)
    # A pause past its date holds nothing, before expire-consent records the resumption.
    consent.find_subscription(people["pause-over"], insights).paused_until = utcnow() - timedelta(
        days=1
    )
    consent.choose_cadence(
        consent.find_subscription(people["digest"], insights), "monthly digest", VIA
    )
    db.session.commit()

    rows = {row["email"]: row for row in audience.recipients(insights)}
    assert set(rows) == {"pause-over@example.com", "digest@example.com", "plain@example.com"}
    assert {(e, r["contact"]) for e, r in rows.items()} == may_send_set(insights.slug)
    for email in ("paused@example.com", "business-paused@example.com"):
        answer = may_send.check(email, insights.slug)
        assert (answer.allowed, answer.status) == (False, "paused")
        assert answer.paused_until is not None
    assert rows["digest@example.com"]["cadence"] == "monthly digest"
    assert rows["plain@example.com"]["cadence"] == "every issue"
    for email, row in rows.items():
        assert may_send.check(email, insights.slug).cadence == row["cadence"]
