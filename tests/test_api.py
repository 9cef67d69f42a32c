"""The sender API: keys and scopes, links, the consent check, contacts, events."""

from __future__ import annotations

import json
import re

import pytest
from helpers import all_events, events_of, state_of

from preference_center import consent, may_send, sender
from preference_center.api import keys as api_keys
from preference_center.consent import Via
from preference_center.extensions import db
from preference_center.models import (
    ApiKey,
    Contact,
    IdempotencyKey,
    Suppression,
)
from preference_center.suppression import address_hash as email_hash

PAGE = Via(channel="preference_page", actor="contact")


def error_of(response) -> dict:
    """The JSON error of a response, after checking it is JSON and not HTML."""
    assert response.mimetype == "application/json", response.data[:200]
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    return body["error"]


@pytest.fixture
def insights(make):
    return make.list("market-insights", name="Market Insights")


@pytest.fixture
def pat(make):
    return make.contact("pat@example.com", name="Pat")


# --- keys and scopes --------------------------------------------------------


def test_create_api_key_prints_the_key_once_and_stores_only_its_hash(runner):
    result = runner.invoke(args=["create-api-key", "ESP", "--scopes", "links,consent:read"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    row = db.session.execute(db.select(ApiKey)).scalar_one()
    assert key.startswith(row.prefix + ".")
    assert row.key_hash == api_keys.hash_key(key) and key not in row.key_hash
    assert row.scopes == "links consent:read"

    listing = runner.invoke(args=["list-api-keys"])
    assert row.prefix in listing.output and key not in listing.output
    assert "never" in listing.output


def test_create_api_key_refuses_an_unknown_scope(runner):
    result = runner.invoke(args=["create-api-key", "ESP", "--scopes", "links,admin"])
    assert result.exit_code != 0
    assert "Unknown scope(s) admin" in result.output
    assert db.session.execute(db.select(ApiKey)).first() is None


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Basic dXNlcjpwYXNz", "Bearer not-a-key", "Bearer pc_00000000.nope"],
)
def test_a_missing_or_wrong_key_is_a_401_json(client, insights, pat, header):
    headers = {"Authorization": header} if header else {}
    response = client.get(
        "/api/v1/consent?email=pat@example.com&list=market-insights", headers=headers
    )
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_right_prefix_with_a_wrong_secret_is_a_401(client, api_auth, insights, pat):
    good = api_auth()["Authorization"]
    wrong = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    response = client.get(
        "/api/v1/consent?email=pat@example.com&list=market-insights",
        headers={"Authorization": wrong},
    )
    assert response.status_code == 401


def test_a_revoked_key_stops_working(client, runner, api_auth, insights, pat):
    headers = api_auth()
    url = "/api/v1/consent?email=pat@example.com&list=market-insights"
    assert client.get(url, headers=headers).status_code == 200
    prefix = headers["Authorization"].split()[1].split(".")[0]

    result = runner.invoke(args=["revoke-api-key", prefix])
    assert result.exit_code == 0 and "Revoked" in result.output

    assert client.get(url, headers=headers).status_code == 401
    assert "revoked" in runner.invoke(args=["list-api-keys"]).output


def test_a_key_without_the_scope_gets_a_403_json(client, api_auth, insights, pat):
    headers = api_auth("links")
    response = client.get(
        "/api/v1/consent?email=pat@example.com&list=market-insights", headers=headers
    )
    assert response.status_code == 403
    assert "consent:read" in error_of(response)["message"]
    for path, method in [("/api/v1/contacts", "post"), ("/api/v1/events", "get")]:
        response = getattr(client, method)(path, headers=headers, json={})
        assert response.status_code == 403


def test_using_a_key_records_when_it_was_last_used(client, api_auth, insights, pat):
    headers = api_auth("consent:read")
    assert db.session.execute(db.select(ApiKey.last_used_at)).scalar() is None
    client.get("/api/v1/consent?email=pat@example.com&list=market-insights", headers=headers)
    db.session.expire_all()
    assert db.session.execute(db.select(ApiKey.last_used_at)).scalar() is not None


def test_api_errors_are_json_never_html(client, api_auth):
    headers = api_auth()
    assert error_of(client.get("/api/v1/nothing-here", headers=headers))["code"] == "not_found"
    response = client.get("/api/v1/links", headers=headers)
    assert response.status_code == 405 and error_of(response)
    response = client.post(
        "/api/v1/links", headers=headers, data="{not json", content_type="application/json"
    )
    assert response.status_code == 400 and error_of(response)["code"] == "bad_json"
    response = client.post(
        "/api/v1/links",
        headers=headers,
        data=b"x" * (1024 * 1024 + 1),
        content_type="application/json",
    )
    assert response.status_code == 413 and error_of(response)


def test_the_rate_limit_is_per_key_and_answers_429_json(app, client, api_auth, insights, pat):
    app.config["API_RATE_LIMIT"] = "3 per minute"
    first, second = api_auth(name="one"), api_auth(name="two")
    url = "/api/v1/consent?email=pat@example.com&list=market-insights"
    assert [client.get(url, headers=first).status_code for _ in range(3)] == [200] * 3
    response = client.get(url, headers=first)
    assert response.status_code == 429 and error_of(response)
    assert client.get(url, headers=second).status_code == 200


# --- POST /links ------------------------------------------------------------


def test_links_for_one_address_and_list(client, api_auth, insights, pat):
    response = client.post(
        "/api/v1/links",
        headers=api_auth("links"),
        json={"email": "PAT@example.com", "list": "market-insights"},
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["manage_url"].startswith("https://prefs.example.test/p/")
    assert body["unsubscribe_url"].startswith("https://prefs.example.test/u/")
    assert body["headers"] == {
        "List-Unsubscribe": f"<{body['unsubscribe_url']}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    # The links work: the manage page opens, the one-click page names the list.
    assert (
        client.get(body["manage_url"].removeprefix("https://prefs.example.test")).status_code == 200
    )
    page = client.get(body["unsubscribe_url"].removeprefix("https://prefs.example.test"))
    assert page.status_code == 200 and b"Market Insights" in page.data


def test_links_without_a_list_give_only_the_manage_url(client, api_auth, pat):
    body = client.post(
        "/api/v1/links", headers=api_auth("links"), json={"email": "pat@example.com"}
    ).get_json()
    assert set(body) == {"email", "list", "manage_url"} and body["list"] is None


def test_links_for_an_unknown_address_or_list_are_404_json(client, api_auth, insights, pat):
    headers = api_auth("links")
    response = client.post("/api/v1/links", headers=headers, json={"email": "who@example.com"})
    assert response.status_code == 404 and error_of(response)["code"] == "unknown_contact"
    response = client.post(
        "/api/v1/links", headers=headers, json={"email": "pat@example.com", "list": "nope"}
    )
    assert response.status_code == 404 and error_of(response)["code"] == "unknown_list"
    response = client.post("/api/v1/links", headers=headers, json={"email": 42})
    assert response.status_code == 422 and error_of(response)


def test_a_batch_answers_each_item_in_order(client, api_auth, insights, pat, make):
    make.contact("sam@example.com")
    items = [
        {"email": "pat@example.com", "list": "market-insights"},
        {"email": "who@example.com", "list": "market-insights"},
        {"email": "sam@example.com"},
        {"email": "sam@example.com", "list": "nope"},
        "not an object",
    ]
    response = client.post("/api/v1/links", headers=api_auth("links"), json={"items": items})
    assert response.status_code == 200
    results = response.get_json()["items"]
    assert len(results) == 5
    assert results[0]["headers"]["List-Unsubscribe"].startswith("<https://")
    assert results[1]["error"]["code"] == "unknown_contact"
    assert "manage_url" in results[2] and "headers" not in results[2]
    assert results[3]["error"]["code"] == "unknown_list"
    assert results[4]["error"]["code"] == "invalid_request"
    assert all("status" not in r.get("error", {}) for r in results)


def test_a_batch_takes_1000_items_and_refuses_1001(client, api_auth, insights, pat):
    headers = api_auth("links")
    item = {"email": "pat@example.com", "list": "market-insights"}
    response = client.post("/api/v1/links", headers=headers, json={"items": [item] * 1000})
    assert response.status_code == 200 and len(response.get_json()["items"]) == 1000
    response = client.post("/api/v1/links", headers=headers, json={"items": [item] * 1001})
    assert response.status_code == 413
    assert error_of(response)["code"] == "batch_too_large"


def test_headers_for_gives_the_same_values_as_the_api(client, api_auth, insights, pat):
    body = client.post(
        "/api/v1/links",
        headers=api_auth("links"),
        json={"email": "pat@example.com", "list": "market-insights"},
    ).get_json()
    headers = sender.headers_for("pat@example.com", "market-insights")
    assert headers == body["headers"]
    with pytest.raises(sender.UnknownRecipient):
        sender.headers_for("who@example.com", "market-insights")
    with pytest.raises(sender.UnknownRecipient):
        sender.headers_for("pat@example.com", "nope")


def test_headers_for_survive_smtp_byte_for_byte(app, smtp, insights, pat):
    """The raw bytes on the wire: one of each header, one https URI, unfolded, unencoded."""
    from preference_center import mailer
    from preference_center.models import OutboxMessage

    headers = sender.headers_for("pat@example.com", "market-insights")
    assert len(headers["List-Unsubscribe"]) > 78  # long enough that a default policy folds it
    db.session.add(
        OutboxMessage(
            kind="newsletter",
            to_email="pat@example.com",
            subject="Market Insights for May",
            text_body="Hello",
            html_body="<p>Hello</p>",
            headers_json=json.dumps(headers),
        )
    )
    db.session.commit()
    assert mailer.deliver_due() == (1, 0)

    [received] = smtp.messages
    head = received.raw.split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"\n")
    lines = head.split(b"\n")
    unsubscribe = [line for line in lines if line.lower().startswith(b"list-unsubscribe:")]
    post = [line for line in lines if line.lower().startswith(b"list-unsubscribe-post:")]
    assert unsubscribe == [b"List-Unsubscribe: " + headers["List-Unsubscribe"].encode()]
    assert post == [b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"]
    assert b"=?" not in unsubscribe[0]
    index = lines.index(unsubscribe[0])
    assert not lines[index + 1][:1].isspace()  # no continuation line: not folded


# --- GET /consent -----------------------------------------------------------


def test_consent_answers_like_may_send(client, api_auth, insights, pat, make):
    make.subscription(pat, insights)
    response = client.get(
        "/api/v1/consent?email=pat@example.com&list=market-insights",
        headers=api_auth("consent:read"),
    )
    assert response.status_code == 200
    assert response.get_json() == may_send.check("pat@example.com", "market-insights").as_dict()
    assert response.get_json()["allowed"] is True


def test_consent_for_an_invited_contact_is_not_allowed(client, api_auth, insights, pat, make):
    make.subscription(pat, insights, state="invited", basis="none", source="networking import")
    body = client.get(
        "/api/v1/consent?email=pat@example.com&list=market-insights",
        headers=api_auth("consent:read"),
    ).get_json()
    assert (body["allowed"], body["status"]) == (False, "invited")


def test_consent_for_an_unknown_address_is_not_allowed(client, api_auth, insights):
    response = client.get(
        "/api/v1/consent?email=who@example.com&list=market-insights",
        headers=api_auth("consent:read"),
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["allowed"], body["status"]) == (False, "unknown")


def test_consent_for_an_unknown_list_or_missing_parameter(client, api_auth, pat):
    headers = api_auth("consent:read")
    response = client.get("/api/v1/consent?email=pat@example.com&list=nope", headers=headers)
    assert response.status_code == 404 and error_of(response)["code"] == "unknown_list"
    response = client.get("/api/v1/consent?email=pat@example.com", headers=headers)
    assert response.status_code == 400 and error_of(response)["code"] == "missing_parameter"
    # PostgreSQL refuses NUL in text: a clear 400, never a 500 (found by schemathesis).
    response = client.get("/api/v1/consent?email=pat%00@example.com&list=a%00b", headers=headers)
    assert response.status_code == 400 and error_of(response)["code"] == "bad_parameter"


# --- POST /contacts ---------------------------------------------------------


def subscription_spec(**fields) -> dict:
    spec = {
        "list": "market-insights",
        "state": "subscribed",
        "source": "signup form",
        "added_by": "Dana Reyes",
        "basis": "express",
        "evidence": "ticked the box on harbor.example/signup",
    }
    return {**spec, **fields}


def contact_by_email(email: str) -> Contact | None:
    return sender.contact_with(email)


def test_contacts_creates_a_contact_with_provenance(client, api_auth, insights):
    response = client.post(
        "/api/v1/contacts",
        headers=api_auth("contacts:write", name="CRM"),
        json={"email": "New@Example.com", "name": "Nia", "subscriptions": [subscription_spec()]},
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    contact = contact_by_email("new@example.com")
    assert body["contact"] == {
        "id": contact.public_id,
        "email": "new@example.com",
        "name": "Nia",
        "language": None,
    }
    assert body["subscriptions"] == [
        {"list": "market-insights", "state": "subscribed", "outcome": "created"}
    ]
    subscription = consent.find_subscription(contact, insights)
    assert (subscription.source, subscription.added_by, subscription.basis) == (
        "signup form",
        "Dana Reyes",
        "express",
    )
    [event] = events_of(contact)
    assert (event.channel, event.actor, event.action) == ("api", "api:CRM", "subscribe")


def test_contacts_updates_an_existing_contact(client, api_auth, insights, pat, make):
    make.subscription(pat, insights, state="invited", basis="none")
    response = client.post(
        "/api/v1/contacts",
        headers=api_auth("contacts:write"),
        json={"email": "pat@example.com", "name": "Pat R.", "subscriptions": [subscription_spec()]},
    )
    assert response.status_code == 200
    assert response.get_json()["subscriptions"][0]["outcome"] == "updated"
    assert state_of(pat, insights) == "subscribed"
    db.session.refresh(pat)
    assert pat.name == "Pat R."


@pytest.mark.parametrize(
    ("fields", "code", "words"),
    [
        ({"source": ""}, "invalid_request", "'source'"),
        ({"basis": "none"}, "provenance", "never subscribes"),
        ({"basis": "implied_purchase"}, "provenance", "purchase or inquiry date"),
        ({"state": "pending"}, "invalid_state", "'state'"),
        ({"list": "nope"}, "unknown_list", "nope"),
        ({"basis_date": "last week"}, "invalid_request", "basis_date"),
        ({"source": "LinkedIn connections export"}, "networking_source", "only be invited"),
    ],
)
def test_contacts_refuses_bad_provenance_with_422_and_writes_nothing(
    client, api_auth, insights, fields, code, words
):
    response = client.post(
        "/api/v1/contacts",
        headers=api_auth("contacts:write"),
        json={"email": "new@example.com", "subscriptions": [subscription_spec(**fields)]},
    )
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == code and words in error["message"]
    assert contact_by_email("new@example.com") is None
    assert all_events() == []


def test_networking_sources_may_invite(client, api_auth, insights):
    spec = subscription_spec(state="invited", basis="none", source="networking import")
    response = client.post(
        "/api/v1/contacts",
        headers=api_auth("contacts:write"),
        json={"email": "new@example.com", "subscriptions": [spec]},
    )
    assert response.status_code == 201
    assert state_of(contact_by_email("new@example.com"), insights) == "invited"


def test_an_unsubscribed_list_cannot_be_turned_back_on(client, api_auth, make, insights, pat):
    offers = make.list("offers-events")
    subscription = make.subscription(pat, insights)
    consent.withdraw(subscription, PAGE)
    db.session.commit()
    before = len(all_events())

    response = client.post(
        "/api/v1/contacts",
        headers=api_auth("contacts:write"),
        json={
            "email": "pat@example.com",
            "name": "Changed",
            "subscriptions": [
                subscription_spec(list="offers-events"),
                subscription_spec(),
            ],
        },
    )
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "suppressed"
    assert "unsubscribed from 'market-insights'" in error["message"]
    # One transaction: the first, acceptable subscription was not written either.
    assert len(all_events()) == before
    assert state_of(pat, insights) == "unsubscribed" and state_of(pat, offers) is None
    db.session.refresh(pat)
    assert pat.name == "Pat"


def test_a_disputed_subscription_is_a_409(client, api_auth, insights, pat, make):
    subscription = make.subscription(pat, insights)
    consent.dispute(subscription, PAGE, "I never signed up")
    db.session.commit()
    response = client.post(
        "/api/v1/contacts",
        headers=api_auth("contacts:write"),
        json={"email": "pat@example.com", "subscriptions": [subscription_spec()]},
    )
    assert response.status_code == 409 and "disputed" in error_of(response)["message"]


def test_an_erased_address_cannot_be_added_again(client, api_auth, insights):
    db.session.add(Suppression(email_hash=email_hash(" Gone@Example.com ")))
    db.session.commit()
    response = client.post(
        "/api/v1/contacts",
        headers=api_auth("contacts:write"),
        json={"email": "gone@example.com", "subscriptions": [subscription_spec()]},
    )
    assert response.status_code == 409 and error_of(response)["code"] == "suppressed"
    assert contact_by_email("gone@example.com") is None and all_events() == []


def test_a_contact_who_declined_business_mail_is_not_put_on_business_lists(
    client, api_auth, insights, pat
):
    consent.decline_business_contact(pat, PAGE)
    db.session.commit()
    response = client.post(
        "/api/v1/contacts",
        headers=api_auth("contacts:write"),
        json={"email": "pat@example.com", "subscriptions": [subscription_spec()]},
    )
    assert response.status_code == 409 and error_of(response)["code"] == "business_declined"
    assert state_of(pat, insights) is None


def test_an_idempotency_key_replays_the_stored_response(client, api_auth, insights):
    headers = {**api_auth("contacts:write"), "Idempotency-Key": "order-1234"}
    body = {"email": "new@example.com", "subscriptions": [subscription_spec()]}
    first = client.post("/api/v1/contacts", headers=headers, json=body)
    events_after_first = len(all_events())
    again = client.post("/api/v1/contacts", headers=headers, json=body)

    assert first.status_code == again.status_code == 201
    assert again.data == first.data
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(all_events()) == events_after_first == 1
    assert db.session.execute(db.select(db.func.count(IdempotencyKey.id))).scalar() == 1

    changed = client.post(
        "/api/v1/contacts", headers=headers, json={**body, "name": "Someone else"}
    )
    assert changed.status_code == 422
    assert error_of(changed)["code"] == "idempotency_mismatch"
    assert contact_by_email("new@example.com").name is None


def test_without_an_idempotency_key_a_repeat_is_a_harmless_update(client, api_auth, insights):
    headers = api_auth("contacts:write")
    body = {"email": "new@example.com", "subscriptions": [subscription_spec()]}
    assert client.post("/api/v1/contacts", headers=headers, json=body).status_code == 201
    again = client.post("/api/v1/contacts", headers=headers, json=body)
    assert again.status_code == 200
    assert again.get_json()["subscriptions"][0]["outcome"] == "unchanged"
    assert len(all_events()) == 1


def test_contacts_refuses_bodies_that_are_not_contacts(client, api_auth):
    headers = api_auth("contacts:write")
    assert client.post("/api/v1/contacts", headers=headers, data="[]").status_code == 400
    response = client.post("/api/v1/contacts", headers=headers, json={"email": "no-at-sign"})
    assert response.status_code == 422 and error_of(response)["code"] == "invalid_email"
    response = client.post(
        "/api/v1/contacts", headers=headers, json={"email": "a@example.com", "name": "A\x00"}
    )
    assert response.status_code == 422 and "NUL" in error_of(response)["message"]
    response = client.post(
        "/api/v1/contacts",
        headers=headers,
        json={"email": "a@example.com", "subscriptions": "market-insights"},
    )
    assert response.status_code == 422
    assert db.session.execute(db.select(Contact)).first() is None


# --- GET /events ------------------------------------------------------------


@pytest.fixture
def history(make, insights):
    """Seven events over three contacts."""
    notes = make.list("personal-notes", audience="personal")
    for name in ("ana", "ben", "cy"):
        contact = make.contact(f"{name}@example.com")
        make.subscription(contact, insights)
        make.subscription(contact, notes, basis="personal")
    consent.withdraw(consent.find_subscription(contact, insights), PAGE)
    db.session.commit()
    return all_events()


def test_events_page_through_the_log_in_order(client, api_auth, history):
    headers = api_auth("events:read")
    seen, cursor, pages = [], None, 0
    while True:
        query = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = client.get("/api/v1/events" + query, headers=headers).get_json()
        seen += body["events"]
        cursor, pages = body["next_cursor"], pages + 1
        if not body["has_more"]:
            break
    assert pages == 3
    assert [e["id"] for e in seen] == [e.id for e in history]
    assert [e["hash"] for e in seen] == [e.hash for e in history]
    last = seen[-1]
    assert (last["action"], last["from_state"], last["to_state"]) == (
        "withdraw",
        "subscribed",
        "unsubscribed",
    )
    assert last["list"] == "market-insights" and last["channel"] == "preference_page"
    assert last["contact"] == history[-1].contact.public_id
    assert last["occurred_at"].endswith("Z") and last["prev_hash"] == history[-2].hash
    assert "ip" not in last and "user_agent" not in last
    # The cursor is opaque and, at the end, yields nothing new until more happens.
    assert not cursor.isdigit()
    body = client.get(f"/api/v1/events?cursor={cursor}", headers=headers).get_json()
    assert body == {"events": [], "next_cursor": cursor, "has_more": False}


def test_events_default_page_and_bad_parameters(client, api_auth, history):
    headers = api_auth("events:read")
    assert len(client.get("/api/v1/events", headers=headers).get_json()["events"]) == 7
    for query in ("?limit=0", "?limit=1001", "?limit=ten", "?cursor=bm9wZQ", "?cursor=%25%25"):
        response = client.get("/api/v1/events" + query, headers=headers)
        assert response.status_code == 400, query
        assert error_of(response)["code"] in {"bad_limit", "bad_cursor"}


def test_events_stream_as_ndjson(client, api_auth, history):
    headers = {**api_auth("events:read"), "Accept": "application/x-ndjson"}
    response = client.get("/api/v1/events?limit=5", headers=headers)
    assert response.status_code == 200 and response.mimetype == "application/x-ndjson"
    lines = response.data.decode().splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["id"] for e in events] == [e.id for e in history[:5]]
    assert response.headers["X-Has-More"] == "true"
    rest = client.get(f"/api/v1/events?cursor={response.headers['X-Next-Cursor']}", headers=headers)
    assert [json.loads(line)["id"] for line in rest.data.decode().splitlines()] == [
        e.id for e in history[5:]
    ]
    assert rest.headers["X-Has-More"] == "false"


def test_events_wait_at_a_gap_until_it_settles(app, client, api_auth, insights, pat, make):
    """On PostgreSQL a rolled-back write leaves a hole in the ids; readers must not skip
    an id that a slow transaction may still commit."""
    headers = api_auth("events:read", "contacts:write")
    offers = make.list("offers-events")
    consent.withdraw(make.subscription(pat, insights), PAGE)
    db.session.commit()
    # Refused after the first subscription's event was flushed: rolled back.
    refused = client.post(
        "/api/v1/contacts",
        headers=headers,
        json={
            "email": "pat@example.com",
            "subscriptions": [subscription_spec(list="offers-events"), subscription_spec()],
        },
    )
    assert refused.status_code == 409 and state_of(pat, offers) is None
    make.subscription(make.contact("sam@example.com"), insights)
    ids = [e.id for e in all_events()]
    gap = any(b != a + 1 for a, b in zip(ids, ids[1:], strict=False))

    app.config["EVENT_SETTLE_SECONDS"] = 3600
    held = client.get("/api/v1/events", headers=headers).get_json()["events"]
    app.config["EVENT_SETTLE_SECONDS"] = 0
    settled = client.get("/api/v1/events", headers=headers).get_json()["events"]

    assert [e["id"] for e in settled] == ids
    assert [e["id"] for e in held] == (ids[:-1] if gap else ids)


# --- the OpenAPI document ---------------------------------------------------


def test_the_openapi_document_names_every_route(app, client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    documented = {
        (f"/api/v1{path}", method.upper())
        for path, operations in document["paths"].items()
        for method in operations
    }
    routed = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert documented == routed


def test_api_key_scopes_are_validated_when_created(app):
    with pytest.raises(api_keys.ApiKeyError):
        api_keys.create("x", [])
    row, key = api_keys.create("x", ["events:read"])
    db.session.commit()
    assert api_keys.verify(key, read_only=True).scopes == {"events:read"}
    assert api_keys.verify(key + "x", read_only=True) is None
