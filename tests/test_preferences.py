"""The preference page through the test client: what it shows, how it changes."""

from datetime import date, datetime

import pytest
from helpers import csrf_token, events_of, state_of

from preference_center import tokens
from preference_center.extensions import db


@pytest.fixture
def story(make):
    """A contact on a personal list, a business list, and offered a third."""
    notes = make.list("personal-notes", audience="personal", name="Dana's personal notes")
    insights = make.list("market-insights", name="Market Insights", frequency="Monthly")
    offers = make.list("offers-events", name="Offers & Events")
    contact = make.contact("morgan.lee@example.com", "Morgan Lee")
    make.subscription(
        contact,
        notes,
        basis="personal",
        source="Dana's address book",
        evidence="Friends since university",
        added_at=datetime(2020, 6, 1, 12),
    )
    make.subscription(
        contact,
        insights,
        state="invited",
        basis="none",
        source="networking import",
        evidence="Connected on LinkedIn on 15 Feb 2011 — a connection is not consent",
        added_at=datetime(2011, 2, 15, 9),
    )
    return contact, notes, insights, offers


def open_page(client, manage_path, contact):
    response = client.get(manage_path(contact))
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_page_shows_every_list_and_why(client, manage_path, story):
    contact, *_ = story
    html = open_page(client, manage_path, contact)

    assert "m***@example.com" in html and "morgan.lee@example.com" not in html
    assert "Receive Dana&#39;s personal notes" in html
    assert "Dana Reyes added you on 1 Jun 2020 because you know each other personally." in html
    assert (
        "Dana Reyes added you on 15 Feb 2011 from a LinkedIn connections export. "
        "A connection is not consent, so you get nothing until you say yes."
    ) in html
    assert "Connected on LinkedIn on 15 Feb 2011" in html  # the evidence, in a <details>
    assert "What market-insights sends." in html and "Monthly" in html
    # A list the contact is not on is offered, off by default.
    offered = html[html.index('id="list-offers-events"') :]
    assert 'id="toggle-offers-events"' in offered
    assert "checked" not in offered[: offered.index("</h3>")]


def test_a_confirmed_signup_reads_as_such(client, manage_path, make):
    insights = make.list("market-insights", name="Market Insights")
    contact = make.contact("alex@example.com")
    make.subscription(
        contact,
        insights,
        basis="double_opt_in",
        source="harbor.example/signup",
        added_at=datetime(2025, 3, 3, 14),
    )
    html = open_page(client, manage_path, contact)
    assert "You subscribed on 3 Mar 2025 on harbor.example/signup and confirmed by email." in html


def test_implied_consent_says_when_it_ends(client, manage_path, make):
    insights = make.list("market-insights", name="Market Insights")
    contact = make.contact("riley@example.com")
    make.subscription(contact, insights, basis="implied_purchase", basis_date=date(2025, 3, 2))
    html = open_page(client, manage_path, contact)
    assert "This ends on 2 Mar 2027 unless you say yes." in html
    assert "Yes, keep sending Market Insights" in html


def test_toggle_without_htmx_redirects_303_and_logs(client, manage_path, story):
    contact, notes, *_ = story
    html = open_page(client, manage_path, contact)
    path = manage_path(contact)

    response = client.post(f"{path}/lists/personal-notes", data={"csrf_token": csrf_token(html)})

    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"{path}#list-personal-notes")
    assert state_of(contact, notes) == "unsubscribed"
    last = events_of(contact)[-1]
    assert (last.action, last.from_state, last.to_state, last.channel) == (
        "withdraw",
        "subscribed",
        "unsubscribed",
        "preference_page",
    )
    assert last.user_agent and last.ip == "127.0.0.1"
    after = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Saved: you will no longer receive Dana&#39;s personal notes." in after


def test_toggle_with_htmx_returns_only_the_row(client, manage_path, story):
    contact, notes, *_ = story
    token = csrf_token(open_page(client, manage_path, contact))

    response = client.post(
        f"{manage_path(contact)}/lists/personal-notes",
        data={},
        headers={"HX-Request": "true", "X-CSRFToken": token},
    )

    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="list-personal-notes"')
    assert "<html" not in body and "Status: Off" in body
    assert "HX-Request" in response.headers["Vary"]
    assert state_of(contact, notes) == "unsubscribed"


def test_opting_in_to_a_business_list_waits_for_email_confirmation(client, manage_path, story):
    contact, _, _, offers = story
    token = csrf_token(open_page(client, manage_path, contact))

    response = client.post(
        f"{manage_path(contact)}/lists/offers-events",
        data={"subscribed": "yes"},
        headers={"HX-Request": "true", "X-CSRFToken": token},
    )

    body = response.get_data(as_text=True)
    assert "Waiting for your confirmation" in body
    assert "we sent a confirmation link to m***@example.com" in body
    assert state_of(contact, offers) == "pending"


def test_toggling_to_the_current_state_writes_nothing(client, manage_path, story):
    contact, *_ = story
    token = csrf_token(open_page(client, manage_path, contact))
    before = len(events_of(contact))

    response = client.post(
        f"{manage_path(contact)}/lists/personal-notes",
        data={"subscribed": "yes"},
        headers={"HX-Request": "true", "X-CSRFToken": token},
    )

    assert "No change." in response.get_data(as_text=True)
    assert len(events_of(contact)) == before


def test_unsubscribe_from_everything_is_one_post(client, manage_path, story):
    contact, notes, insights, _ = story
    html = open_page(client, manage_path, contact)

    response = client.post(
        f"{manage_path(contact)}/everything", data={"csrf_token": csrf_token(html)}
    )

    assert response.status_code == 303
    assert state_of(contact, notes) == state_of(contact, insights) == "unsubscribed"
    request_ids = {e.request_id for e in events_of(contact)[-2:]}
    assert len(request_ids) == 1


def test_a_post_without_csrf_token_is_refused_and_changes_nothing(client, manage_path, story):
    contact, notes, *_ = story
    before = len(events_of(contact))

    response = client.post(f"{manage_path(contact)}/lists/personal-notes", data={})
    htmx = client.post(
        f"{manage_path(contact)}/lists/personal-notes", headers={"HX-Request": "true"}
    )

    assert response.status_code == htmx.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    assert state_of(contact, notes) == "subscribed"
    assert len(events_of(contact)) == before


def test_cross_origin_post_is_refused_and_same_site_https_without_referer_works(
    client, manage_path, story
):
    contact, notes, *_ = story
    site = "https://prefs.example.test"
    token = csrf_token(client.get(manage_path(contact), base_url=site).text)
    path = f"{manage_path(contact)}/lists/personal-notes"

    evil = client.post(
        path,
        headers={"HX-Request": "true", "X-CSRFToken": token, "Origin": "https://evil.test"},
        base_url=site,
    )
    assert evil.status_code == 400
    assert state_of(contact, notes) == "subscribed"

    # A browser on our no-referrer page sends no Referer and Origin: null.
    ours = client.post(
        path,
        headers={"HX-Request": "true", "X-CSRFToken": token, "Origin": "null"},
        base_url=site,
    )
    assert ours.status_code == 200
    assert state_of(contact, notes) == "unsubscribed"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-3] + ("aaa" if not t.endswith("aaa") else "bbb"),  # tampered signature
        lambda t: t[: len(t) // 2],  # truncated
        lambda t: "not-a-token",
        lambda t: "",
    ],
)
def test_bad_tokens_get_the_same_404_page(client, manage_path, story, mangle):
    contact, *_ = story
    token = manage_path(contact).removeprefix("/p/")
    response = client.get(f"/p/{mangle(token)}" if mangle(token) else "/p/%20")
    assert response.status_code == 404
    assert "This link isn&#39;t valid" in response.get_data(as_text=True)


def test_unknown_contact_retired_key_and_revoked_version_look_the_same(app, client, story):
    contact, *_ = story
    unknown = tokens.URLSafeTimedSerializer(
        app.config["LINK_SIGNING_KEYS"], salt=tokens.MANAGE
    ).dumps({"c": "0" * 32, "v": 1})
    retired = tokens.URLSafeTimedSerializer("an-old-key", salt=tokens.MANAGE).dumps(
        {"c": contact.public_id, "v": 1}
    )
    wrong_purpose = tokens.sign(tokens.CONFIRM, contact, l="personal-notes")
    revoked = tokens.sign(tokens.MANAGE, contact)
    contact.token_version += 1
    db.session.commit()

    bodies = set()
    for token in (unknown, retired, wrong_purpose, revoked):
        response = client.get(f"/p/{token}")
        assert response.status_code == 404
        bodies.add(response.get_data())
    assert len(bodies) == 1


def test_rotated_keys_still_verify_old_links(app, client, story):
    contact, *_ = story
    old_link = tokens.sign(tokens.MANAGE, contact)
    app.config["LINK_SIGNING_KEYS"] = [app.config["LINK_SIGNING_KEYS"][-1], "the-new-key"]
    new_link = tokens.sign(tokens.MANAGE, contact)

    assert new_link != old_link
    assert client.get(f"/p/{old_link}").status_code == 200
    assert client.get(f"/p/{new_link}").status_code == 200


def test_manage_links_outlive_sixty_days_and_expire_when_configured(app, story):
    contact, *_ = story
    assert app.config["MANAGE_LINK_MAX_AGE_DAYS"] >= 60
    token = tokens.sign(tokens.MANAGE, contact)
    app.config["MANAGE_LINK_MAX_AGE_DAYS"] = -1
    with pytest.raises(tokens.InvalidLink):
        tokens.verify(tokens.MANAGE, token)


def test_the_token_carries_no_email_and_no_database_id(story):
    contact, *_ = story
    payload = tokens._serializer(tokens.MANAGE).loads(tokens.sign(tokens.MANAGE, contact))
    assert payload == {"c": contact.public_id, "v": 1}
    assert str(contact.id) != contact.public_id and "@" not in str(payload)


def test_unknown_list_wrong_method_and_oversized_body(app, client, manage_path, story):
    contact, *_ = story
    token = csrf_token(open_page(client, manage_path, contact))
    before = len(events_of(contact))
    headers = {"X-CSRFToken": token}

    unknown = client.post(f"{manage_path(contact)}/lists/no-such-list", headers=headers)
    wrong_method = client.put(f"{manage_path(contact)}/lists/personal-notes", headers=headers)
    oversized = client.post(
        f"{manage_path(contact)}/lists/personal-notes",
        data={"words": "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)},
        headers=headers,
    )
    bad_choice = client.post(
        f"{manage_path(contact)}/business", data={"business": "maybe"}, headers=headers
    )

    assert unknown.status_code == 404 and "There is no such list." in unknown.text
    assert wrong_method.status_code == 405
    assert oversized.status_code == 413
    assert bad_choice.status_code == 400
    for response in (unknown, wrong_method, oversized, bad_choice):
        assert "Traceback" not in response.text and "<h1>" in response.text
    assert len(events_of(contact)) == before


def test_get_and_head_change_nothing(client, manage_path, story):
    contact, *_ = story
    before = len(events_of(contact))
    for path in ("", "/lists/personal-notes", "/everything", "/business"):
        client.get(manage_path(contact) + path)
        client.head(manage_path(contact) + path)
    assert len(events_of(contact)) == before


def test_security_headers_on_the_token_page(client, manage_path, story):
    contact, *_ = story
    response = client.get(manage_path(contact))
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "http" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert "noindex" in response.headers["X-Robots-Tag"]
    assert "<script>" not in response.text and " on" + "click=" not in response.text


def test_html_in_list_names_is_escaped(client, manage_path, make):
    hostile = make.list("hostile", audience="personal", name="<img src=x onerror=alert(1)>")
    contact = make.contact("pat@example.com")
    make.subscription(contact, hostile, basis="personal", evidence="<script>alert(2)</script>")
    html = open_page(client, manage_path, contact)
    assert "<img src=x" not in html and "<script>alert" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_token_never_reaches_the_logs(app, client, manage_path, story, caplog):
    contact, *_ = story
    path = manage_path(contact)
    with caplog.at_level("DEBUG"):
        client.get(path)
        client.get(path[:-4] + "zzzz")
        app.logger.warning("visited %s", path)
    assert path.removeprefix("/p/") not in caplog.text
    assert "/p/[token]" in caplog.text


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}
