"""The preference page in a real browser (Debian's Chromium through Playwright)."""

import re
from pathlib import Path

import pytest
from helpers import events_of, state_of
from playwright.sync_api import expect

from preference_center import demo, tokens
from preference_center.extensions import db

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def morgan(app, live_server):
    """The demo contact on both a personal and a business list."""
    contacts = demo.load()
    db.session.commit()
    contact = next(c for c in contacts if c.name == "Morgan Lee")
    lists = {s.mailing_list.slug: s.mailing_list for s in contact.subscriptions}
    return contact, lists, tokens.manage_url(contact)


def test_a_toggle_swaps_its_row_in_place_and_is_logged(page, morgan):
    contact, lists, url = morgan
    before = len(events_of(contact))
    page.goto(url)
    page.evaluate("window.notReloaded = true")

    toggle = page.get_by_role("checkbox", name=re.compile("Dana's personal notes"))
    expect(toggle).to_be_checked()
    toggle.uncheck()

    row = page.locator("#list-personal-notes")
    expect(row).to_contain_text("Saved: you will no longer receive Dana's personal notes.")
    expect(row).to_contain_text("Status: Off")
    expect(
        page.get_by_role("checkbox", name=re.compile("Dana's personal notes"))
    ).not_to_be_checked()
    assert page.evaluate("window.notReloaded") is True  # no page load happened
    assert state_of(contact, lists["personal-notes"]) == "unsubscribed"
    event = events_of(contact)[-1]
    assert len(events_of(contact)) == before + 1
    assert (event.action, event.channel) == ("withdraw", "preference_page")
    assert "Chrom" in event.user_agent


def test_without_javascript_the_form_posts_and_the_page_comes_back(browser, morgan):
    contact, lists, url = morgan
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(url)

    page.get_by_role("checkbox", name=re.compile("Dana's personal notes")).uncheck()
    page.get_by_role("button", name="Save Dana's personal notes").click()

    expect(page.get_by_role("status").first).to_contain_text(
        "Saved: you will no longer receive Dana's personal notes."
    )
    expect(page.locator("#list-personal-notes")).to_contain_text("Status: Off")
    assert state_of(contact, lists["personal-notes"]) == "unsubscribed"
    assert events_of(contact)[-1].action == "withdraw"
    context.close()


def test_the_page_has_no_serious_accessibility_violations(page, morgan):
    _, _, url = morgan
    page.goto(url)
    page.evaluate(AXE.read_text())  # injected, since CSP allows no inline or foreign script
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    serious = [
        (v["id"], v["help"], [n["target"] for n in v["nodes"]])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_declining_business_contact_switches_off_business_and_keeps_personal(
    browser, morgan, javascript
):
    contact, lists, url = morgan
    context = browser.new_context(java_script_enabled=javascript)
    page = context.new_page()
    page.goto(url)
    if javascript:
        page.evaluate("window.notReloaded = true")

    page.get_by_role("radio", name="No thanks").check()
    page.get_by_role("button", name="Save business choice").click()

    expect(page.get_by_role("status").first).to_contain_text(
        "Personal messages from the sender are not affected."
    )
    business = page.get_by_role("checkbox", name="Receive Market Insights")
    expect(business).not_to_be_checked()
    expect(business).to_be_disabled()
    expect(page.get_by_role("checkbox", name=re.compile("Dana's personal notes"))).to_be_checked()
    if javascript:
        assert page.evaluate("window.notReloaded") is True
    assert state_of(contact, lists["market-insights"]) == "unsubscribed"
    assert state_of(contact, lists["personal-notes"]) == "subscribed"
    context.close()
