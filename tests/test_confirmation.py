"""Double opt-in: the emailed link opens a page; only its POST confirms."""

from __future__ import annotations

import html
import re

import pytest
from helpers import csrf_token, events_of, state_of

from preference_center import consent, mailer, may_send
from preference_center.consent import Via
from preference_center.extensions import db

PAGE = Via(channel="preference_page", actor="contact")
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) ConfirmTest/1.0"


@pytest.fixture
def pending(make, smtp):
    """Pat said yes to a business list; the confirmation mail has arrived."""
    insights = make.list("market-insights", name="Market Insights")
    contact = make.contact("pat@example.com", "Pat")
    consent.opt_in(contact, insights, PAGE, evidence="ticked on the page")
    db.session.commit()
    assert mailer.deliver_due() == (1, 0)
    [received] = smtp.messages
    [url] = re.findall(r"https://prefs\.example\.test(/confirm/\S+)", received.text())
    return contact, insights, url


def test_opening_the_link_changes_nothing(client, pending):
    contact, insights, path = pending
    before = len(events_of(contact))

    page = client.get(path)
    head = client.head(path)

    assert page.status_code == 200 and head.status_code == 200
    assert "Yes, send me Market Insights" in page.text
    assert 'method="post"' in page.text
    assert page.headers["X-Robots-Tag"] == "noindex, nofollow"
    assert state_of(contact, insights) == "pending"
    assert len(events_of(contact)) == before
    assert not may_send.check("pat@example.com", "market-insights").allowed


def test_pressing_the_button_confirms_and_records_who_and_how(client, pending):
    contact, insights, path = pending
    page = client.get(path)

    response = client.post(
        path,
        data={"csrf_token": csrf_token(page.text)},
        headers={"User-Agent": BROWSER},
        environ_base={"REMOTE_ADDR": "198.51.100.23"},
    )

    assert response.status_code == 200
    assert "Confirmed: you will receive Market Insights." in response.text
    assert state_of(contact, insights) == "subscribed"
    event = events_of(contact)[-1]
    assert (event.action, event.from_state, event.to_state) == ("confirm", "pending", "subscribed")
    assert (event.basis, event.channel, event.actor) == (
        "double_opt_in",
        "email_confirmation",
        "contact",
    )
    assert (event.ip, event.user_agent) == ("198.51.100.23", BROWSER)
    assert event.occurred_at is not None
    subscription = consent.find_subscription(contact, insights)
    assert subscription.basis == "double_opt_in"
    assert subscription.confirmed_at is not None
    assert may_send.check("pat@example.com", "market-insights").allowed


def test_confirming_twice_records_one_event(client, pending):
    contact, _insights, path = pending
    token = csrf_token(client.get(path).text)
    client.post(path, data={"csrf_token": token})
    before = len(events_of(contact))

    again = client.post(path, data={"csrf_token": token})

    assert "You already receive Market Insights." in again.text
    assert len(events_of(contact)) == before


def test_a_post_without_the_form_token_changes_nothing(client, pending):
    contact, insights, path = pending

    response = client.post(path, data={})

    assert response.status_code == 400
    assert "This form has expired" in response.text
    assert state_of(contact, insights) == "pending"


def test_a_link_for_a_withdrawn_subscription_confirms_nothing(client, pending):
    contact, insights, path = pending
    token = csrf_token(client.get(path).text)
    consent.withdraw(consent.find_subscription(contact, insights), PAGE)
    db.session.commit()
    assert "There is nothing to confirm" in client.get(path).text

    response = client.post(path, data={"csrf_token": token})

    assert "There is nothing to confirm for Market Insights." in response.text
    assert state_of(contact, insights) == "unsubscribed"


def test_a_tampered_link_is_the_invalid_link_page(client, pending):
    _contact, _insights, path = pending

    response = client.get(path[:-3] + "xyz")

    assert response.status_code == 404
    assert "This link isn't valid" in html.unescape(response.text)
