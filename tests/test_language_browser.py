"""The language control in Chromium: with and without JavaScript, and right to left."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import events_of
from playwright.sync_api import expect

from preference_center import demo, tokens
from preference_center.extensions import db

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-results"


@pytest.fixture
def morgan(app, live_server):
    contacts = demo.load()
    db.session.commit()
    contact = next(c for c in contacts if c.name == "Morgan Lee")
    return contact, tokens.manage_url(contact)


def test_with_javascript_the_page_swaps_into_french_and_stays_french(browser, morgan):
    contact, url = morgan
    context = browser.new_context()
    page = context.new_page()
    page.goto(url)
    page.evaluate("window.notReloaded = true")

    page.get_by_label("Language of this page and of our emails").select_option("fr")
    page.get_by_role("button", name="Save language").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Vos préférences d’e-mail")
    expect(page.locator("#page")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("status").first).to_contain_text("en français")
    expect(page.get_by_role("checkbox", name="Recevoir Regards sur les marchés")).to_be_visible()
    assert page.evaluate("window.notReloaded") is True  # swapped by htmx, no page load
    event = events_of(contact)[-1]
    assert (event.action, event.to_state, event.channel) == (
        "language_set", "fr", "preference_page"
    )  # fmt: skip
    context.close()

    # A new browser (no cookies, an English Accept-Language) still gets French.
    fresh = browser.new_context(locale="en-US")
    again = fresh.new_page()
    again.goto(url)
    expect(again.locator("html")).to_have_attribute("lang", "fr")
    expect(again.get_by_role("heading", level=1)).to_have_text("Vos préférences d’e-mail")
    SCREENSHOTS.mkdir(exist_ok=True)
    again.screenshot(path=str(SCREENSHOTS / "preferences-fr.png"), full_page=True)
    fresh.close()


def test_without_javascript_the_form_posts_and_the_page_comes_back_right_to_left(browser, morgan):
    contact, url = morgan
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(url)

    page.get_by_label("Language of this page and of our emails").select_option("ar")
    page.get_by_role("button", name="Save language").click()

    html = page.locator("html")
    expect(html).to_have_attribute("lang", "ar")
    expect(html).to_have_attribute("dir", "rtl")
    expect(page.get_by_role("heading", level=1)).to_have_text("تفضيلات بريدك الإلكتروني")
    flash = page.locator("p.flash").first
    expect(flash).to_contain_text("تم الحفظ")
    # Logical CSS: the flash's bar is at the start of the line, which is the right in Arabic.
    assert flash.evaluate("e => getComputedStyle(e).borderRightWidth") == "4px"
    assert flash.evaluate("e => getComputedStyle(e).borderLeftWidth") == "0px"
    box = page.get_by_role("heading", level=1).bounding_box()
    width = page.viewport_size["width"]
    assert box["x"] + box["width"] > width / 2  # the heading starts on the right
    assert events_of(contact)[-1].to_state == "ar"
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "preferences-ar.png"), full_page=True)
    context.close()
