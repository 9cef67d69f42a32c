""" "I never agreed to this", clicked through in Chromium, with and without JavaScript."""

from __future__ import annotations

import pytest
from helpers import events_of
from playwright.sync_api import expect

from preference_center.extensions import db
from preference_center.models import Subscription

WORDS = "We met once at a conference. I never asked for a newsletter."


@pytest.fixture
def invited(make):
    insights = make.list("market-insights", name="Market Insights")
    contact = make.contact("sam@example.com", "Sam Rivera")
    subscription = make.subscription(
        contact,
        insights,
        state="invited",
        basis="none",
        source="networking import",
        evidence="Connected on LinkedIn on 15 Feb 2011",
    )
    return contact, subscription


def dispute_through(page, url: str) -> None:
    # Outside a request every transaction is a writer (BEGIN IMMEDIATE on SQLite):
    # end the test's own before the server needs to write.
    db.session.rollback()
    page.goto(url)
    expect(page.get_by_text("from a LinkedIn connections export")).to_be_visible()
    page.get_by_text("I never agreed to Market Insights").click()
    page.get_by_label("In your own words (optional)").fill(WORDS)
    page.get_by_role("button", name="Stop Market Insights and tell the sender").click()
    expect(
        page.get_by_text("Thank you. You are off this list and we have told the sender.")
    ).to_be_visible()
    expect(page.get_by_text("You told us you never agreed to this.")).to_be_visible()
    expect(page.get_by_role("checkbox", name="Receive Market Insights")).not_to_be_checked()


def assert_disputed(contact, subscription) -> None:
    db.session.expire_all()
    stored = db.session.get(Subscription, subscription.id)
    assert stored.state == "unsubscribed"
    assert stored.disputed_at is not None
    assert stored.dispute_text == WORDS
    assert (stored.added_by, stored.source) == ("Dana Reyes", "networking import")
    event = events_of(contact)[-1]
    assert (event.action, event.from_state, event.to_state) == (
        "dispute",
        "invited",
        "unsubscribed",
    )
    assert (event.detail, event.channel, event.actor) == (WORDS, "preference_page", "contact")
    assert event.user_agent and "Chrome" in event.user_agent


@pytest.mark.browser
def test_dispute_with_javascript(page, live_server, invited, manage_path):
    contact, subscription = invited

    dispute_through(page, live_server.url + manage_path(contact))

    assert_disputed(contact, subscription)


@pytest.mark.browser
def test_dispute_without_javascript(browser, live_server, invited, manage_path):
    contact, subscription = invited
    context = browser.new_context(java_script_enabled=False)
    try:
        dispute_through(context.new_page(), live_server.url + manage_path(contact))
    finally:
        context.close()

    assert_disputed(contact, subscription)
