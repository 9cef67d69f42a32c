"""The law in the product: jurisdiction, subscriber type and the rules that depend on them.

Invitations by jurisdiction (CASL s.1(3), PECR reg. 22, ePrivacy Art. 13,
CAN-SPAM), conspicuous publication (CASL s.10(9)(b)), soft opt-in (PECR reg.
22(3)), the non-business and ongoing-relationship clocks (CASL s.10(13)–(14)),
list flags as notice versions, and the jurisdiction on every event and export.
Each door (CLI import, API, admin) is asked in turn; the rules are consent.py's.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta

import pytest
import sqlalchemy as sa
from admin_helpers import create, sign_in, token_of
from helpers import csrf_token, events_of, fresh, state_of
from jsonschema import Draft202012Validator

from preference_center import consent, data_export, ledger, may_send
from preference_center.consent import ConsentError, Provenance, Via
from preference_center.extensions import db
from preference_center.models import ListNotice, OutboxMessage, utcnow

PROFILE = "https://www.linkedin.example/in/pat-example"
TODAY = utcnow().date()


def months_ago(months: int, days: int = 0):
    return consent.add_months(TODAY, -months) + timedelta(days=days)


@pytest.fixture
def insights(make):
    return make.list("market-insights", name="Market Insights")


@pytest.fixture
def notes(make):
    return make.list("personal-notes", audience="personal", name="Dana's personal notes")


def flag(mailing_list, **flags) -> None:
    from preference_center import list_notices

    list_notices.revise(mailing_list, **flags)
    db.session.commit()


def invited(make, mailing_list, email, jurisdiction=None, subscriber_type=None):
    contact = make.contact(email, jurisdiction=jurisdiction)
    contact.addresses[0].subscriber_type = subscriber_type
    db.session.commit()
    make.subscription(contact, mailing_list, state="invited", basis="none", source="import")
    return contact


def queued_invitations() -> list[str]:
    fresh()
    return [
        row.to_email
        for row in db.session.execute(db.select(OutboxMessage).filter_by(kind="invitation"))
        .scalars()
        .all()
    ]


# --- invitations: an emailed request for consent is itself marketing where the law says so --


@pytest.mark.parametrize(
    ("jurisdiction", "subscriber_type", "prior", "sent", "rule"),
    [
        ("US", None, None, True, None),
        ("CA", None, None, False, "CASL: asking for consent by email is itself a commercial"),
        ("CA", None, "implied_purchase", True, None),
        ("CA", None, "personal", True, None),
        ("GB", "individual", None, False, "PECR: an email asking an individual subscriber"),
        ("GB", None, None, False, "PECR: an email asking an individual subscriber"),
        ("GB", "corporate", None, True, None),
        ("GB", "individual", "soft_opt_in", True, None),
        ("DE", "individual", None, False, "ePrivacy Art. 13"),
        ("FR", "corporate", None, True, None),
        (None, None, None, False, "Set DEFAULT_JURISDICTION or the contact's jurisdiction"),
    ],
)
def test_send_invitations_sends_only_where_an_invitation_is_lawful(
    runner, make, insights, notes, jurisdiction, subscriber_type, prior, sent, rule
):
    contact = invited(make, insights, "pat@example.com", jurisdiction, subscriber_type)
    if prior == "implied_purchase":
        other = make.list("client-news")
        make.subscription(contact, other, basis="implied_purchase", basis_date=months_ago(3))
    elif prior == "personal":
        make.subscription(contact, notes, basis="personal", evidence="friends since school")
    elif prior == "soft_opt_in":
        other = make.list("similar-news")
        flag(other, similar_products=True)
        make.subscription(
            contact, other, basis="soft_opt_in", evidence="bought a review", basis_date=TODAY
        )

    result = runner.invoke(args=["send-invitations", "--list", "market-insights"])

    assert result.exit_code == 0, result.output
    assert queued_invitations() == (["pat@example.com"] if sent else [])
    if sent:
        assert "1 invitation(s) queued" in result.output and "skipped" not in result.output
    else:
        assert "0 invitation(s) queued" in result.output
        assert "1 skipped, to ask in person" in result.output
        assert f"1: {rule}" in result.output or rule in result.output
        # Still invited and not asked: a later run (or a conversation) can still reach them.
        fresh()
        assert consent.find_subscription(contact, insights).invited_at is None


def test_default_jurisdiction_applies_to_contacts_without_their_own(app, runner, make, insights):
    invited(make, insights, "pat@example.com")
    app.config["DEFAULT_JURISDICTION"] = "US"

    result = runner.invoke(args=["send-invitations", "--list", "market-insights"])

    assert "1 invitation(s) queued" in result.output
    assert queued_invitations() == ["pat@example.com"]


def test_the_skip_report_counts_each_rule(runner, make, insights):
    invited(make, insights, "ca1@example.com", "CA")
    invited(make, insights, "ca2@example.com", "CA")
    invited(make, insights, "gb@example.com", "GB")
    invited(make, insights, "us@example.com", "US")

    result = runner.invoke(args=["send-invitations", "--list", "market-insights"])

    assert "1 invitation(s) queued" in result.output
    assert "3 skipped, to ask in person" in result.output
    assert "  2: CASL: asking for consent by email" in result.output
    assert "  1: PECR:" in result.output


def test_the_admin_sees_an_uninvitable_contact_as_ask_in_person(client, make, insights):
    contact = invited(make, insights, "pat@example.com", "CA")
    create()
    sign_in(client, "ada@example.com")

    page = client.get(f"/admin/contacts/{contact.public_id}").get_data(as_text=True)

    assert "ask in person" in page
    assert "CASL: asking for consent by email is itself a commercial message" in page


# --- conspicuous publication (CASL s.10(9)(b)) ------------------------------------------


def conspicuous(evidence=f"Published on {PROFILE}", basis_date=TODAY) -> Provenance:
    return Provenance(
        source="public profile",
        added_by="Dana Reyes",
        basis="conspicuous_publication",
        evidence=evidence,
        basis_date=basis_date,
    )


def test_s8_item_15_conspicuous_publication_needs_a_role_relevant_list_and_evidence(make, insights):
    """standards.md §8 item 15: conspicuous-publication contacts only on role-relevant
    lists, with evidence of where (a URL) and when (the capture date)."""
    contact = make.contact("pat@example.com", jurisdiction="CA")
    via = Via("admin", "test")
    with pytest.raises(ConsentError, match="not flagged role-relevant"):
        consent.place(contact, insights, "subscribed", conspicuous(), via)
    flag(insights, role_relevant=True)
    with pytest.raises(ConsentError, match="a URL in the evidence"):
        consent.place(contact, insights, "subscribed", conspicuous(evidence="on LinkedIn"), via)
    with pytest.raises(ConsentError, match="needs the date the published address was captured"):
        consent.place(contact, insights, "subscribed", conspicuous(basis_date=None), via)
    db.session.rollback()
    assert events_of(contact) == []

    subscription, outcome = consent.place(contact, insights, "subscribed", conspicuous(), via)
    db.session.commit()

    assert outcome == "created" and subscription.expires_at is None
    assert may_send.check("pat@example.com", "market-insights").allowed


def test_s8_item_13_the_page_says_where_and_when_a_published_address_was_found(
    client, manage_path, make, insights
):
    """standards.md §8 item 13: the page shows why — for conspicuous publication the
    public business profile's URL and the capture date; for CASL implied consent
    the date it ends."""
    flag(insights, role_relevant=True)
    contact = make.contact("pat@example.com", jurisdiction="CA")
    found_on = TODAY - timedelta(days=10)
    make.subscription(
        contact,
        insights,
        basis="conspicuous_publication",
        evidence=f"Work address on {PROFILE}",
        basis_date=found_on,
    )
    offers = make.list("offers-events", name="Offers & Events")
    bought = months_ago(2)
    make.subscription(contact, offers, basis="implied_purchase", basis_date=bought)

    page = client.get(manage_path(contact)).get_data(as_text=True)

    assert f"public business profile at {PROFILE}" in page
    assert f"where we found it on {found_on.day} {found_on:%b %Y}" in page
    ends = consent.add_months(bought, 24)
    assert f"This ends on {ends.day} {ends:%b %Y} unless you say yes." in page


def write_csv(tmp_path, rows: str):
    path = tmp_path / "contacts.csv"
    path.write_text(rows, encoding="utf-8")
    return str(path)


def import_args(path, basis, slug="market-insights"):
    return [
        "import-contacts",
        path,
        "--list",
        slug,
        "--source",
        "research",
        "--basis",
        basis,
        "--added-by",
        "Dana Reyes",
    ]


def test_conspicuous_publication_at_the_import_door(runner, make, insights, tmp_path):
    good = write_csv(
        tmp_path,
        f"email,evidence,basis_date,jurisdiction\npat@example.com,Profile {PROFILE},"
        f"{TODAY.isoformat()},CA\n",
    )
    refused = runner.invoke(args=import_args(good, "conspicuous_publication"))
    assert refused.exit_code != 0 and "not flagged role-relevant" in refused.output

    flag(insights, role_relevant=True)
    no_url = write_csv(
        tmp_path, f"email,evidence,basis_date\npat@example.com,on LinkedIn,{TODAY.isoformat()}\n"
    )
    rejected = runner.invoke(args=import_args(no_url, "conspicuous_publication"))
    assert rejected.exit_code != 0 and "line 2: CASL s.10(9)(b)" in rejected.output
    assert state_of_email("pat@example.com") is None

    good = write_csv(
        tmp_path,
        f"email,evidence,basis_date,jurisdiction\npat@example.com,Profile {PROFILE},"
        f"{TODAY.isoformat()},CA\n",
    )
    imported = runner.invoke(args=import_args(good, "conspicuous_publication"))
    assert imported.exit_code == 0, imported.output
    assert state_of_email("pat@example.com") == "subscribed"


def state_of_email(email):
    fresh()
    answer = may_send.check(email, "market-insights")
    return answer.status if answer.status not in ("unknown", "not_subscribed") else None


def api_contact(client, api_auth, email, spec, **fields):
    return client.post(
        "/api/v1/contacts",
        headers=api_auth("contacts:write"),
        json={"email": email, **fields, "subscriptions": [spec]},
    )


def spec(basis, evidence, basis_date=TODAY, slug="market-insights", **extra):
    return {
        "list": slug,
        "state": "subscribed",
        "source": "research",
        "added_by": "Dana Reyes",
        "basis": basis,
        "evidence": evidence,
        "basis_date": basis_date.isoformat() if basis_date else None,
        **extra,
    }


def test_conspicuous_publication_at_the_api_door(client, api_auth, make, insights):
    good = spec("conspicuous_publication", f"Profile {PROFILE}")
    refused = api_contact(client, api_auth, "pat@example.com", good, jurisdiction="CA")
    assert refused.status_code == 422
    assert "not flagged role-relevant" in refused.get_json()["error"]["message"]

    flag(insights, role_relevant=True)
    no_url = api_contact(
        client, api_auth, "pat@example.com", spec("conspicuous_publication", "on LinkedIn")
    )
    assert no_url.status_code == 422 and state_of_email("pat@example.com") is None

    accepted = api_contact(client, api_auth, "pat@example.com", good, jurisdiction="CA")
    assert accepted.status_code == 201, accepted.get_json()
    assert state_of_email("pat@example.com") == "subscribed"


def admin_place(client, contact, basis, evidence, basis_date=TODAY, slug="market-insights"):
    return client.post(
        f"/admin/contacts/{contact.public_id}/consent",
        data={
            "csrf_token": token_of(client, f"/admin/contacts/{contact.public_id}"),
            "list": slug,
            "state": "subscribed",
            "basis": basis,
            "evidence": evidence,
            "basis_date": basis_date.isoformat(),
            "reason": "met at the fair",
        },
    )


def test_conspicuous_publication_and_soft_opt_in_at_the_admin_door(client, make, insights):
    create()
    sign_in(client, "ada@example.com")
    pat = make.contact("pat@example.com", jurisdiction="CA")

    refused = admin_place(client, pat, "conspicuous_publication", f"Profile {PROFILE}")
    assert refused.status_code == 409
    assert "not flagged role-relevant" in refused.get_data(as_text=True)
    soft = admin_place(client, pat, "soft_opt_in", "Bought a review, invoice 12")
    assert soft.status_code == 409 and "CASL has no soft opt-in" in soft.get_data(as_text=True)
    assert state_of(pat, insights) is None

    flag(insights, role_relevant=True)
    accepted = admin_place(client, pat, "conspicuous_publication", f"Profile {PROFILE}")
    assert accepted.status_code == 303
    assert state_of(pat, insights) == "subscribed"


# --- soft opt-in (PECR reg. 22(3)) ------------------------------------------------------


def test_s8_item_16_soft_opt_in_needs_a_sale_a_similar_products_list_and_offers_refusal(
    client, manage_path, make, insights
):
    """standards.md §8 item 16: soft_opt_in only from sale or negotiation evidence, for
    the sender's similar-products lists, with the refusal offered; refused for CA; an
    unknown subscriber type is treated as individual (see the invitation gate)."""
    via = Via("admin", "test")
    sale = Provenance(
        "client records",
        "Dana",
        "soft_opt_in",
        evidence="Bought a portfolio review",
        basis_date=TODAY,
    )
    gb = make.contact("pat@example.com", jurisdiction="GB")
    with pytest.raises(ConsentError, match="not flagged similar-products"):
        consent.place(gb, insights, "subscribed", sale, via)
    flag(insights, similar_products=True)
    with pytest.raises(ConsentError, match="needs the sale or negotiation as evidence"):
        consent.place(
            gb,
            insights,
            "subscribed",
            Provenance("x", "Dana", "soft_opt_in", basis_date=TODAY),
            via,
        )
    with pytest.raises(ConsentError, match="needs the date of the sale or negotiation"):
        consent.place(
            gb, insights, "subscribed", Provenance("x", "Dana", "soft_opt_in", "Bought it"), via
        )
    ca = make.contact("kim@example.com", jurisdiction="CA")
    with pytest.raises(ConsentError, match="CASL has no soft opt-in"):
        consent.place(ca, insights, "subscribed", sale, via)
    db.session.rollback()

    consent.place(gb, insights, "subscribed", sale, via)
    db.session.commit()
    page = client.get(manage_path(gb)).get_data(as_text=True)
    assert "because you bought from or talked business with Harbor Financial" in page
    assert "Bought a portfolio review" in page
    assert "saying no is one click: switch this list off" in page

    # The refusal is one step: the list's own toggle.
    token = csrf_token(page)
    response = client.post(
        f"{manage_path(gb)}/lists/market-insights",
        data={"csrf_token": token, "subscribed": "no"},
    )
    assert response.status_code == 303
    assert state_of(gb, insights) == "unsubscribed"


def test_soft_opt_in_at_the_import_and_api_doors(
    runner, client, api_auth, make, insights, tmp_path
):
    flag(insights, similar_products=True)
    rows = write_csv(
        tmp_path,
        "email,evidence,basis_date,jurisdiction\n"
        f"gb@example.com,Quote Q-12,{TODAY.isoformat()},GB\n"
        f"ca@example.com,Quote Q-13,{TODAY.isoformat()},CA\n",
    )
    refused = runner.invoke(args=import_args(rows, "soft_opt_in"))
    assert refused.exit_code != 0 and "line 3: CASL has no soft opt-in" in refused.output
    assert state_of_email("gb@example.com") is None

    skipped = runner.invoke(args=[*import_args(rows, "soft_opt_in"), "--skip-invalid"])
    assert skipped.exit_code == 0, skipped.output
    assert state_of_email("gb@example.com") == "subscribed"
    assert state_of_email("ca@example.com") is None

    ca = api_contact(
        client, api_auth, "kim@example.com", spec("soft_opt_in", "Quote Q-14"), jurisdiction="CA"
    )
    assert ca.status_code == 422 and "CASL has no soft opt-in" in ca.get_json()["error"]["message"]
    de = api_contact(
        client, api_auth, "lea@example.com", spec("soft_opt_in", "Quote Q-15"), jurisdiction="DE"
    )
    assert de.status_code == 201, de.get_json()


# --- the clocks: CASL s.10(10), (13) and (14) --------------------------------------------


def at_start_of(day):
    return datetime.combine(day, time.min)


def test_s8_item_14_casl_clocks_inquiry_purchase_and_ongoing_relationships(make, insights):
    """standards.md §8 item 14: an inquiry-based contact is blocked after 6 months, a
    purchase-based one after 2 years, and an ongoing relationship's period starts when
    it ends (CASL s.10(14))."""
    cases = [
        ("inquiry@example.com", "implied_inquiry", months_ago(1), None, 6),
        ("purchase@example.com", "implied_purchase", months_ago(1), None, 24),
        ("member@example.com", "implied_nonbusiness", months_ago(1), None, 24),
        # A client since 2019 whose account closed a month ago: the clock runs from the close.
        ("account@example.com", "implied_purchase", TODAY.replace(year=2019), months_ago(1), 24),
        ("club@example.com", "implied_nonbusiness", TODAY.replace(year=2015), months_ago(1), 24),
    ]
    for email, basis, basis_date, ended, months in cases:
        contact = make.contact(email, jurisdiction="CA")
        make.subscription(
            contact, insights, basis=basis, basis_date=basis_date, relationship_ended_on=ended
        )
        end = at_start_of(consent.add_months(ended or basis_date, months))
        before = may_send.check(email, "market-insights", now=end - timedelta(microseconds=1))
        after = may_send.check(email, "market-insights", now=end)
        assert before.allowed and before.jurisdiction == "CA", (email, before)
        assert not after.allowed and after.status == "expired", (email, after)
        assert after.reason.startswith("CASL s.6(1)"), after.reason


def test_the_non_business_clock_refuses_what_has_already_ended(make, insights):
    contact = make.contact("pat@example.com", jurisdiction="CA")
    via = Via("admin", "test")
    ended_yesterday = Provenance(
        "club list", "Dana", "implied_nonbusiness", "member", basis_date=months_ago(24, days=-1)
    )
    with pytest.raises(ConsentError, match="already ended"):
        consent.place(contact, insights, "subscribed", ended_yesterday, via)
    ends_tomorrow = Provenance(
        "club list", "Dana", "implied_nonbusiness", "member", basis_date=months_ago(24, days=1)
    )
    subscription, _ = consent.place(contact, insights, "subscribed", ends_tomorrow, via)
    assert subscription.expires_at == at_start_of(TODAY + timedelta(days=1))


@pytest.mark.parametrize(
    ("basis", "basis_date", "ended", "message"),
    [
        (
            "implied_inquiry",
            months_ago(1),
            months_ago(0, days=-1),
            "not to basis 'implied_inquiry'",
        ),
        ("implied_purchase", months_ago(3), TODAY + timedelta(days=1), "is in the future"),
        ("implied_nonbusiness", months_ago(3), months_ago(4), "is before the basis date"),
    ],
)
def test_relationship_ended_on_is_checked(make, insights, basis, basis_date, ended, message):
    contact = make.contact("pat@example.com", jurisdiction="CA")
    provenance = Provenance(
        "records", "Dana", basis, "evidence", basis_date=basis_date, relationship_ended_on=ended
    )
    with pytest.raises(ConsentError, match=message):
        consent.place(contact, insights, "subscribed", provenance, Via("admin", "test"))


def test_relationship_ended_on_from_the_csv_and_the_api(
    runner, client, api_auth, make, insights, tmp_path
):
    ended = months_ago(2)
    rows = write_csv(
        tmp_path,
        "email,evidence,basis_date,relationship_ended_on\n"
        f"pat@example.com,Member 2010-2026,2010-05-01,{ended.isoformat()}\n",
    )
    result = runner.invoke(args=import_args(rows, "implied_nonbusiness"))
    assert result.exit_code == 0, result.output
    answer = may_send.check("pat@example.com", "market-insights")
    assert answer.expires_at.startswith(consent.add_months(ended, 24).isoformat())

    response = api_contact(
        client,
        api_auth,
        "kim@example.com",
        spec(
            "implied_purchase",
            "Account closed",
            months_ago(60),
            relationship_ended_on=ended.isoformat(),
        ),
    )
    assert response.status_code == 201, response.get_json()
    answer = may_send.check("kim@example.com", "market-insights")
    assert answer.allowed and answer.expires_at.startswith(
        consent.add_months(ended, 24).isoformat()
    )


# --- jurisdiction and subscriber type at the doors ---------------------------------------


def test_jurisdiction_and_subscriber_type_from_the_csv(runner, make, insights, tmp_path):
    rows = write_csv(
        tmp_path,
        "email,jurisdiction,subscriber_type\n"
        "pat@example.com,ca,corporate\nkim@example.com,,\nlea@example.com,XX,\n",
    )
    refused = runner.invoke(args=import_args(rows, "express"))
    assert refused.exit_code != 0
    assert "line 4: jurisdiction: 'XX' is not an ISO 3166-1 alpha-2 country code" in refused.output

    rows = write_csv(
        tmp_path,
        "email,jurisdiction,subscriber_type\npat@example.com,ca,corporate\nkim@example.com,,\n",
    )
    result = runner.invoke(args=import_args(rows, "express"))
    assert result.exit_code == 0, result.output
    assert may_send.check("pat@example.com", "market-insights").jurisdiction == "CA"
    assert may_send.check("kim@example.com", "market-insights").jurisdiction is None
    pat = may_send_contact("pat@example.com")
    assert pat.addresses[0].subscriber_type == "corporate"


def may_send_contact(email):
    from preference_center.sender import contact_with

    fresh()
    return contact_with(email)


def test_the_api_takes_and_answers_the_jurisdiction(client, api_auth, make, insights):
    response = api_contact(
        client,
        api_auth,
        "pat@example.com",
        spec("express", "ticked the box", None),
        jurisdiction="gb",
        subscriber_type="corporate",
    )
    assert response.status_code == 201, response.get_json()
    bad = api_contact(
        client, api_auth, "kim@example.com", spec("express", "x", None), jurisdiction="Canada"
    )
    assert bad.status_code == 422 and "ISO 3166-1 alpha-2" in bad.get_json()["error"]["message"]

    answer = client.get(
        "/api/v1/consent?email=pat@example.com&list=market-insights",
        headers=api_auth("consent:read"),
    ).get_json()
    assert answer["allowed"] is True and answer["jurisdiction"] == "GB"
    assert may_send_contact("pat@example.com").addresses[0].subscriber_type == "corporate"


def test_may_send_carries_the_jurisdiction_and_a_refusal_names_the_rule(runner, make, insights):
    contact = make.contact("pat@example.com", jurisdiction="GB")
    make.subscription(contact, insights, state="invited", basis="none")

    answer = json.loads(
        runner.invoke(args=["may-send", "pat@example.com", "market-insights"]).output
    )

    assert answer["allowed"] is False and answer["jurisdiction"] == "GB"
    assert answer["reason"].startswith("PECR reg. 22:")


def test_the_admin_sets_a_contacts_jurisdiction(client, make):
    create()
    sign_in(client, "ada@example.com")
    pat = make.contact("pat@example.com")
    path = f"/admin/contacts/{pat.public_id}"

    bad = client.post(
        f"{path}/jurisdiction", data={"csrf_token": token_of(client, path), "jurisdiction": "ZZ"}
    )
    assert bad.status_code == 422 and "not an ISO 3166-1 alpha-2" in bad.get_data(as_text=True)
    good = client.post(
        f"{path}/jurisdiction", data={"csrf_token": token_of(client, path), "jurisdiction": "ca"}
    )
    assert good.status_code == 303

    [event] = events_of(pat)
    assert (event.action, event.from_state, event.to_state) == ("set_jurisdiction", "unknown", "CA")
    assert event.jurisdiction == "CA"


# --- list flags are part of the notice ---------------------------------------------------


def test_edit_list_flags_make_a_new_notice_version(runner, make, insights):
    result = runner.invoke(args=["edit-list", "market-insights", "--role-relevant"])
    assert result.exit_code == 0, result.output
    assert "notice version 2 (flags: role-relevant)" in result.output
    same = runner.invoke(args=["edit-list", "market-insights", "--role-relevant"])
    assert "Nothing changed" in same.output
    runner.invoke(args=["edit-list", "market-insights", "--no-role-relevant", "--similar-products"])

    fresh()
    notices = (
        db.session.execute(
            db.select(ListNotice).filter_by(list_id=insights.id).order_by(ListNotice.version)
        )
        .scalars()
        .all()
    )
    assert [(n.version, n.role_relevant, n.similar_products) for n in notices] == [
        (1, False, False),
        (2, True, False),
        (3, False, True),
    ]
    assert runner.invoke(args=["edit-list", "nope", "--role-relevant"]).exit_code != 0


def test_the_admin_list_form_sets_the_flags(client, make, insights):
    create()
    sign_in(client, "ada@example.com")
    path = "/admin/lists/market-insights"
    response = client.post(
        path,
        data={
            "csrf_token": token_of(client, path),
            "name": insights.name,
            "description": insights.description,
            "frequency": insights.frequency,
            "similar_products": "yes",
        },
    )
    assert response.status_code == 303
    fresh()
    db.session.refresh(insights)
    assert insights.similar_products and not insights.role_relevant
    assert insights.notice_version == 2
    assert "similar products" in client.get(path).get_data(as_text=True)


# --- the jurisdiction on every event, the chain and the exports --------------------------


def test_s8_item_11_every_toggle_event_records_the_jurisdiction(
    client, manage_path, make, insights
):
    """standards.md §8 item 11: every toggle POST writes one complete consent event —
    who, when, notice version, how, actor, legal basis and jurisdiction — and the
    chain verifies."""
    contact = make.contact("pat@example.com", jurisdiction="DE")
    make.subscription(contact, insights)
    before = len(events_of(contact))
    token = csrf_token(client.get(manage_path(contact)).get_data(as_text=True))

    client.post(
        f"{manage_path(contact)}/lists/market-insights",
        data={"csrf_token": token, "subscribed": "no"},
    )

    events = events_of(contact)
    assert len(events) == before + 1
    event = events[-1]
    assert (event.action, event.channel, event.actor) == ("withdraw", "preference_page", "contact")
    assert event.notice_version == 1 and event.basis == "express" and event.occurred_at
    assert event.jurisdiction == "DE"
    assert ledger.verify_all().ok


def test_the_hash_covers_a_recorded_jurisdiction_and_old_events_hash_as_before(make, insights):
    known = make.contact("pat@example.com", jurisdiction="CA")
    unknown = make.contact("kim@example.com")
    make.subscription(known, insights)
    make.subscription(unknown, insights)
    [with_code] = events_of(known)
    [without] = events_of(unknown)

    fields = ledger.hashed_fields(with_code, known.public_id, "market-insights")
    assert '"jurisdiction":"CA"' in ledger.canonical(fields)
    assert ledger.event_hash({**fields, "jurisdiction": "US"}) != with_code.hash
    assert ledger.event_hash({**fields, "jurisdiction": None}) != with_code.hash
    # An event without one has exactly the canonical form events had before the column.
    old = ledger.hashed_fields(without, unknown.public_id, "market-insights")
    assert "jurisdiction" not in ledger.canonical(old)
    assert ledger.canonical(old) == ledger._canonical_json(old, ledger.HASHED_FIELDS)
    assert ledger.verify_all().ok


def test_the_database_refuses_to_change_a_recorded_jurisdiction(make, insights):
    contact = make.contact("pat@example.com", jurisdiction="CA")
    make.subscription(contact, insights)
    [event] = events_of(contact)

    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        db.session.execute(
            sa.text("UPDATE consent_events SET jurisdiction = 'US' WHERE id = :id"),
            {"id": event.id},
        )
    db.session.rollback()


def test_jurisdiction_in_export_log_the_data_export_and_the_receipts(
    runner, make, insights, tmp_path
):
    contact = make.contact("pat@example.com", jurisdiction="CA")
    contact.addresses[0].subscriber_type = "individual"
    db.session.commit()
    make.subscription(
        contact,
        insights,
        basis="implied_purchase",
        basis_date=months_ago(40),
        relationship_ended_on=months_ago(1),
    )

    result = runner.invoke(args=["export-log", "--format", "ndjson"])
    [row] = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert row["jurisdiction"] == "CA"
    csv_out = runner.invoke(args=["export-log", "--format", "csv"]).stdout
    assert "jurisdiction" in csv_out.splitlines()[0] and ",CA," in csv_out

    fresh()
    document = data_export.build(contact)
    errors = [e.message for e in Draft202012Validator(data_export.schema()).iter_errors(document)]
    assert errors == []
    assert document["contact"]["jurisdiction"] == "CA"
    assert document["addresses"][0]["subscriber_type"] == "individual"
    assert document["consent_log"]["events"][0]["jurisdiction"] == "CA"
    assert document["consent_log"]["optional_hashed_fields"] == ["jurisdiction", "language"]
    [subscription] = document["subscriptions"]
    assert subscription["provenance"]["relationship_ended_on"] == months_ago(1).isoformat()
    [receipt] = document["receipts"]
    assert receipt["jurisdiction"] == "CA"
    assert runner.invoke(args=["verify-log"]).exit_code == 0


def test_the_demo_tells_the_story_by_jurisdiction(runner):
    assert runner.invoke(args=["demo"]).exit_code == 0
    where = {
        email: may_send.check(email, "market-insights").jurisdiction
        for email in ("sam.rivera@example.com", "alex.chen@example.com", "morgan.lee@example.com")
    }
    assert where == {
        "sam.rivera@example.com": "US",
        "alex.chen@example.com": "GB",
        "morgan.lee@example.com": "CA",
    }
    # Sam (US) may be invited by email.
    result = runner.invoke(args=["send-invitations", "--list", "market-insights"])
    assert "1 invitation(s) queued" in result.output


def test_an_invalid_default_jurisdiction_is_refused_at_start_up(database_url, tmp_path):
    from plugins.database import settings

    from preference_center import create_app
    from preference_center.jurisdictions import JurisdictionError

    with pytest.raises(JurisdictionError):
        create_app(settings(database_url, tmp_path, DEFAULT_JURISDICTION="Canada"))


def test_the_readme_snippet_recomputes_hashes_with_and_without_a_jurisdiction(
    runner, make, insights
):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    snippet = re.search(r"```python\n(import hashlib, json\n.*?)```", readme, re.S).group(1)
    namespace: dict = {}
    exec(snippet, namespace)  # noqa: S102 - the README's snippet, run as published
    make.subscription(make.contact("pat@example.com", jurisdiction="CA"), insights)
    make.subscription(make.contact("kim@example.com"), insights)
    lines = runner.invoke(args=["export-log", "--format", "ndjson"]).stdout.splitlines()

    assert [json.loads(line)["jurisdiction"] for line in lines] == ["CA", None]
    assert all(namespace["check"](line) for line in lines)
    tampered = json.loads(lines[0])
    tampered["jurisdiction"] = "US"
    assert not namespace["check"](json.dumps(tampered))
