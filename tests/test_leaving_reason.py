"""The optional reason after leaving: offered after a withdrawal on the page (htmx and
without JavaScript), after "everything" and after the one-click page's button; never
required, stored with the withdrawal's events, counted on the dashboard; the RFC 8058
header POST is untouched."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from admin_helpers import create, sign_in
from helpers import csrf_token, events_of, state_of

from preference_center import erasure, tokens
from preference_center.consent import Via
from preference_center.extensions import db
from preference_center.models import LeavingReason

HTMX = {"HX-Request": "true"}


@pytest.fixture
def insights(make):
    return make.list("market-insights", name="Market Insights")


@pytest.fixture
def offers(make):
    return make.list("offers-events", name="Offers & Events")


@pytest.fixture
def pat(make, insights, offers):
    contact = make.contact("pat@example.com")
    make.subscription(contact, insights)
    make.subscription(contact, offers)
    return contact


def reasons() -> list[LeavingReason]:
    db.session.commit()
    return list(db.session.execute(db.select(LeavingReason).order_by(LeavingReason.id)).scalars())


def question(html: str) -> str:
    match = re.search(r'<form method="post" action="(https?://[^"]+/leaving/[^"]+)"', html)
    assert match, "the answer offers no question"
    return urlsplit(match.group(1)).path


def test_withdrawing_with_htmx_offers_the_question_in_the_row(client, manage_path, pat, insights):
    path = manage_path(pat)
    token = csrf_token(client.get(path).text)
    response = client.post(
        f"{path}/lists/market-insights",
        data={"csrf_token": token, "subscribed": "no"},
        headers=HTMX,
    )
    assert state_of(pat, insights) == "unsubscribed"  # done before any question
    html = response.text
    assert "Would you tell us why? (optional)" in html
    assert 'name="reason"' in html and 'name="reason_text"' in html
    answer = client.post(
        question(html),
        data={"csrf_token": token, "reason": "too_many", "reason_text": "Weekly is a lot"},
        headers=HTMX,
    )
    assert answer.status_code == 200 and "Thank you for telling us." in answer.text
    [stored] = reasons()
    withdrawal = events_of(pat)[-1]
    assert (stored.event_id, stored.list_id) == (withdrawal.id, insights.id)
    assert (stored.reason, stored.text) == ("too_many", "Weekly is a lot")
    # Answering wrote no consent event and changed no state.
    assert events_of(pat)[-1].id == withdrawal.id


def test_without_javascript_the_page_after_the_303_asks_once(client, manage_path, pat):
    path = manage_path(pat)
    token = csrf_token(client.get(path).text)
    response = client.post(
        f"{path}/lists/market-insights", data={"csrf_token": token, "subscribed": "no"}
    )
    assert response.status_code == 303
    page = client.get(response.headers["Location"])
    assert "Saved: you will no longer receive Market Insights." in page.text
    target = question(page.text)
    assert "Would you tell us why?" not in client.get(path).text  # shown once
    done = client.post(target, data={"csrf_token": token, "reason": "not_relevant"})
    assert done.status_code == 200 and "Thank you for telling us" in done.text
    assert [r.reason for r in reasons()] == ["not_relevant"]


def test_the_question_is_never_required(client, manage_path, pat, insights):
    path = manage_path(pat)
    token = csrf_token(client.get(path).text)
    html = client.post(
        f"{path}/lists/market-insights",
        data={"csrf_token": token, "subscribed": "no"},
        headers=HTMX,
    ).text
    # An empty answer is fine and stores nothing; an unknown reason is not stored as one.
    assert client.post(question(html), data={"csrf_token": token}).status_code == 200
    assert reasons() == []
    client.post(question(html), data={"csrf_token": token, "reason": "<script>"})
    assert reasons() == []
    assert state_of(pat, insights) == "unsubscribed"
    # Without the CSRF token nothing is stored.
    refused = client.post(question(html), data={"reason": "too_many"})
    assert refused.status_code == 400 and reasons() == []


def test_everything_stores_the_reason_for_every_list_it_stopped(
    app, client, manage_path, pat, insights, offers
):
    path = manage_path(pat)
    token = csrf_token(client.get(path).text)
    html = client.post(f"{path}/everything", data={"csrf_token": token}, headers=HTMX).text
    assert "Done: you are off every list (2 changed)." in html
    client.post(question(html), data={"csrf_token": token, "reason": "never_asked"})
    client.post(question(html), data={"csrf_token": token, "reason": "other"})  # once only
    assert sorted((r.list_id, r.reason) for r in reasons()) == sorted(
        [(insights.id, "never_asked"), (offers.id, "never_asked")]
    )

    create()
    sign_in(client, "ada@example.com")
    dashboard = client.get("/admin/").text
    assert "Why people left" in dashboard
    rows = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td><td>(\d+)</td></tr>", dashboard)
    assert ("Market Insights", "I never asked for it", "1") in rows
    assert ("Offers &amp; Events", "I never asked for it", "1") in rows


def test_the_one_click_page_button_asks_but_the_header_post_does_not(client, pat, insights, offers):
    page_path = urlsplit(tokens.unsubscribe_url(pat, "market-insights")).path
    page = client.get(page_path)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]+)">', page.text))
    assert fields == {"List-Unsubscribe": "One-Click", "from": "page"}
    answered = client.post(page_path, data=fields)
    assert answered.status_code == 200
    assert "You are unsubscribed from Market Insights." in answered.text
    target = question(answered.text)
    client.post(target, data={"csrf_token": csrf_token(answered.text), "reason": "too_many"})
    assert [(r.list_id, r.reason) for r in reasons()] == [(insights.id, "too_many")]

    header_path = urlsplit(tokens.unsubscribe_url(pat, "offers-events")).path
    response = client.post(
        header_path,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers and "Location" not in response.headers
    assert "/leaving/" not in response.text and "csrf_token" not in response.text
    assert state_of(pat, offers) == "unsubscribed"


def test_a_reason_link_for_another_request_stores_nothing(client, manage_path, pat, make):
    other = make.contact("other@example.com")
    path = manage_path(pat)
    token = csrf_token(client.get(path).text)
    forged = "/leaving/" + tokens.sign(tokens.LEAVING_REASON, other, r="not-a-request")
    assert client.post(forged, data={"csrf_token": token, "reason": "other"}).status_code == 200
    assert reasons() == []
    assert client.post("/leaving/tampered", data={"csrf_token": token}).status_code == 404


def test_erasure_forgets_the_words_and_keeps_the_count(client, manage_path, pat):
    path = manage_path(pat)
    token = csrf_token(client.get(path).text)
    html = client.post(
        f"{path}/lists/market-insights",
        data={"csrf_token": token, "subscribed": "no"},
        headers=HTMX,
    ).text
    client.post(
        question(html), data={"csrf_token": token, "reason": "other", "reason_text": "my words"}
    )
    db.session.refresh(pat)
    erasure.erase(pat, Via("admin", "test"))
    db.session.commit()
    [stored] = reasons()
    assert (stored.reason, stored.text) == ("other", None)
