"""Pause instead of leaving: per list and for all business mail; may-send, the API and
the CLI say paused; it resumes by itself at the date (recorded once) or early."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from helpers import csrf_token, events_of, state_of

from preference_center import may_send
from preference_center.extensions import db
from preference_center.models import Subscription, utcnow

HTMX = {"HX-Request": "true"}


@pytest.fixture
def insights(make):
    return make.list("market-insights", name="Market Insights")


@pytest.fixture
def notes(make):
    return make.list("personal-notes", audience="personal", name="Dana's personal notes")


@pytest.fixture
def pat(make, insights, notes):
    contact = make.contact("pat@example.com", name="Pat")
    make.subscription(contact, insights)
    make.subscription(contact, notes, basis="personal")
    return contact


@pytest.fixture
def page(client, manage_path, pat):
    path = manage_path(pat)
    response = client.get(path)
    return path, csrf_token(response.text)


def subscription_of(contact, mailing_list) -> Subscription:
    db.session.commit()
    return db.session.execute(
        db.select(Subscription).filter_by(contact_id=contact.id, list_id=mailing_list.id)
    ).scalar_one()


def answer(runner, email="pat@example.com", slug="market-insights") -> dict:
    result = runner.invoke(args=["may-send", email, slug])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_the_page_offers_a_pause_for_each_list_received(client, page):
    path, _ = page
    html = client.get(path).text
    assert "Pause Market Insights for 30 days" in html
    assert "Pause Market Insights for 90 days" in html
    assert "Pause all business messages for 30 days" in html


def test_pausing_a_list_without_javascript_is_a_303_and_may_send_says_paused(
    client, page, pat, insights, runner, api_auth
):
    path, token = page
    response = client.post(
        f"{path}/lists/market-insights/pause", data={"csrf_token": token, "days": "30"}
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("#list-market-insights")
    until = subscription_of(pat, insights).paused_until
    assert until.date() == (utcnow() + timedelta(days=30)).date()
    assert state_of(pat, insights) == "subscribed"  # still on the list, only held

    cli = answer(runner)
    assert (cli["allowed"], cli["status"]) == (False, "paused")
    assert cli["paused_until"] == until.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    api = client.get(
        "/api/v1/consent?email=pat@example.com&list=market-insights", headers=api_auth()
    ).get_json()
    assert api == cli
    # The personal list is not paused by a business list's pause.
    assert answer(runner, slug="personal-notes")["allowed"] is True

    event = events_of(pat)[-1]
    assert (event.action, event.from_state, event.to_state) == ("pause", "subscribed", "paused")
    assert event.detail == f"until {until:%Y-%m-%d}"
    html = client.get(path).text
    assert "Paused until" in html and "Resume Market Insights now" in html


def test_pausing_with_htmx_swaps_the_row(client, page, pat, insights):
    path, token = page
    response = client.post(
        f"{path}/lists/market-insights/pause",
        data={"csrf_token": token, "days": "90"},
        headers=HTMX,
    )
    assert response.status_code == 200
    html = response.text
    assert html.lstrip().startswith('<div id="list-market-insights"')
    assert "Paused: nothing from Market Insights until" in html
    assert "Resume Market Insights now" in html
    until = subscription_of(pat, insights).paused_until
    assert until.date() == (utcnow() + timedelta(days=90)).date()


def test_a_pause_of_another_length_or_without_csrf_is_refused(client, page, pat, insights):
    path, token = page
    odd = client.post(
        f"{path}/lists/market-insights/pause", data={"csrf_token": token, "days": "7"}
    )
    assert odd.status_code == 409 and "30 or 90 days" in odd.text
    bad = client.post(f"{path}/lists/market-insights/pause", data={"csrf_token": token})
    assert bad.status_code == 400
    assert (
        client.post(f"{path}/lists/market-insights/pause", data={"days": "30"}).status_code == 400
    )
    assert subscription_of(pat, insights).paused_until is None
    assert [e.action for e in events_of(pat)].count("pause") == 0


def test_resuming_early_sends_again(client, page, pat, insights, runner):
    path, token = page
    client.post(f"{path}/lists/market-insights/pause", data={"csrf_token": token, "days": "30"})
    response = client.post(
        f"{path}/lists/market-insights/resume", data={"csrf_token": token}, headers=HTMX
    )
    assert "Resumed: you receive Market Insights again." in response.text
    assert subscription_of(pat, insights).paused_until is None
    assert answer(runner)["allowed"] is True
    event = events_of(pat)[-1]
    assert (event.action, event.channel, event.actor) == ("resume", "preference_page", "contact")


def test_it_resumes_by_itself_at_the_date_recorded_once(client, page, pat, insights, runner):
    path, token = page
    client.post(f"{path}/lists/market-insights/pause", data={"csrf_token": token, "days": "30"})
    until = subscription_of(pat, insights).paused_until
    # At the date the answer is "allowed" even before the resumption is recorded.
    assert may_send.check("pat@example.com", "market-insights", now=until).allowed is True
    assert may_send.check(
        "pat@example.com", "market-insights", now=until - timedelta(1)
    ).status == ("paused")
    # The date arrives: expire-consent records the resumption, once.
    subscription = subscription_of(pat, insights)
    subscription.paused_until = utcnow() - timedelta(minutes=1)
    db.session.commit()
    first = runner.invoke(args=["expire-consent"])
    assert "1 pause(s) ended." in first.output
    second = runner.invoke(args=["expire-consent"])
    assert "0 pause(s) ended." in second.output
    resumes = [e for e in events_of(pat) if e.action == "resume"]
    assert len(resumes) == 1
    assert (resumes[0].channel, resumes[0].actor) == ("system", "system")
    assert answer(runner)["allowed"] is True


def test_pausing_all_business_mail_holds_business_lists_only(client, page, pat, insights, runner):
    path, token = page
    response = client.post(f"{path}/business/pause", data={"csrf_token": token, "days": "30"})
    assert response.status_code == 303
    assert answer(runner)["status"] == "paused"
    assert answer(runner, slug="personal-notes")["allowed"] is True
    html = client.get(path).text
    assert "All business messages are paused until" in html
    assert "with all business messages" in html
    event = events_of(pat)[-1]
    assert (event.action, event.list_id, event.to_state) == ("pause_business", None, "paused")

    client.post(f"{path}/business/resume", data={"csrf_token": token})
    assert answer(runner)["allowed"] is True
    assert events_of(pat)[-1].action == "resume_business"


def test_business_pause_resumes_by_itself_once(client, page, pat, runner):
    path, token = page
    client.post(f"{path}/business/pause", data={"csrf_token": token, "days": "90"})
    db.session.commit()
    db.session.refresh(pat)
    pat.business_paused_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert "1 pause(s) ended." in runner.invoke(args=["expire-consent"]).output
    assert "0 pause(s) ended." in runner.invoke(args=["expire-consent"]).output
    assert [e.action for e in events_of(pat)].count("resume_business") == 1


def test_only_a_list_received_can_be_paused(client, page, make, pat):
    path, token = page
    make.list("offers-events", name="Offers & Events")
    response = client.post(
        f"{path}/lists/offers-events/pause", data={"csrf_token": token, "days": "30"}
    )
    assert response.status_code == 404
    client.post(f"{path}/lists/market-insights", data={"csrf_token": token, "subscribed": "no"})
    response = client.post(
        f"{path}/lists/market-insights/pause", data={"csrf_token": token, "days": "30"}
    )
    assert response.status_code == 409 and "Only a list you receive" in response.text


def test_withdrawing_ends_a_pause_so_nothing_resumes_later(client, page, pat, insights, runner):
    path, token = page
    client.post(f"{path}/lists/market-insights/pause", data={"csrf_token": token, "days": "30"})
    client.post(f"{path}/lists/market-insights", data={"csrf_token": token, "subscribed": "no"})
    assert subscription_of(pat, insights).paused_until is None
    assert "0 pause(s) ended." in runner.invoke(args=["expire-consent"]).output
    assert answer(runner)["status"] == "unsubscribed"
