"""Download my data and delete my data in a real browser, with the mail on a real SMTP server."""

import json
import re

import pytest
from helpers import fresh
from playwright.sync_api import expect

from preference_center import ledger, mailer, tokens
from preference_center.extensions import db

pytestmark = pytest.mark.browser


@pytest.fixture
def pat(make, live_server):
    notes = make.list("notes", audience="personal")
    contact = make.contact("pat@example.com", name="Pat Doe")
    make.subscription(contact, notes, basis="personal")
    return contact


def emailed_link(smtp, folder: str) -> str:
    fresh()
    mailer.deliver_due()
    (message,) = smtp.messages
    assert message.rcpt_tos == ["pat@example.com"]
    smtp.messages.clear()
    return re.search(rf"(http://\S+/{folder}/\S+)", message.text()).group(1)


def test_download_my_data_in_chromium(page, pat, smtp, tmp_path):
    page.goto(tokens.manage_url(pat))

    page.get_by_role("button", name="Email me a link to download my data").click()

    expect(page.locator("#your-data")).to_contain_text("We sent a link to p***@example.com")
    page.goto(emailed_link(smtp, "download"))
    with page.expect_download() as download:
        page.get_by_role("link", name="Download my data").click()
    path = tmp_path / "mine.json"
    download.value.save_as(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["addresses"][0]["email"] == "pat@example.com"
    assert len(document["consent_log"]["events"]) == 1


def test_delete_my_data_in_chromium(page, pat, smtp):
    page.goto(tokens.manage_url(pat))

    page.get_by_role("button", name="Email me a link to delete my data").click()

    expect(page.locator("#your-data")).to_contain_text("We sent a link to p***@example.com")
    page.goto(emailed_link(smtp, "erase"))
    expect(page.get_by_role("heading", name="Delete your data")).to_be_visible()
    page.get_by_role("button", name="Delete my data").click()
    expect(page.get_by_role("heading", name="Your data is deleted")).to_be_visible()
    fresh()
    db.session.refresh(pat)
    assert pat.erased_at is not None and pat.addresses == []
    assert ledger.verify_all().ok
