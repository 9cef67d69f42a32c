"""axe-core on every public page, in Debian's Chromium: no serious or critical violations.

The pages are the ones in ``public_pages``; the answers to forms are reached by
pressing their buttons, except the few only a crafted POST reaches, which the
test client fetches and the browser shows at the same URL with the same headers.
"""

from __future__ import annotations

import re
from pathlib import Path

import public_pages
import pytest
from admin_helpers import token_of
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"


class Axe:
    """Runs axe on the page the browser shows and collects what is serious."""

    def __init__(self, page):
        self.page = page
        self.source = AXE.read_text()
        self.checked: list[str] = []
        self.found: dict[str, list] = {}

    def check(self, name: str) -> None:
        self.page.evaluate(self.source)  # injected: the CSP allows no inline or foreign script
        result = self.page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        serious = [
            (v["id"], v["help"], [n["target"] for n in v["nodes"]])
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        self.checked.append(name)
        if serious:
            self.found[name] = serious


def show(page, url: str, response) -> None:
    """Show a response the test client got, at ``url``, as the browser would have."""
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    page.route(
        url,
        lambda route: route.fulfill(
            status=response.status_code, headers=headers, body=response.get_data()
        ),
    )
    page.goto(url)
    page.unroute(url)


def test_every_public_page_passes_axe(page, live_server, app, make, client):
    world = public_pages.build(make)
    axe = Axe(page)
    base = live_server.url
    for name, path in public_pages.get_pages(world).items():
        page.goto(base + path)
        axe.check(name)

    # Answers reached by pressing the buttons.
    page.goto(base + public_pages.manage(world.alex))
    page.get_by_role("checkbox", name=re.compile("Receive Notes")).uncheck()
    expect(page.locator("#list-notes")).to_contain_text("Saved: you will no longer receive")
    axe.check("preferences after a toggle (htmx row)")
    page.goto(base + public_pages.confirm(world))
    page.get_by_role("button", name=re.compile("Yes, send me")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you")
    axe.check("confirmed")
    page.goto(base + public_pages.verify(world, "owner"))
    page.get_by_role("button", name="Yes, that was me").click()
    expect(page.locator("main")).to_contain_text("Approved")
    axe.check("address approved")
    page.goto(base + public_pages.one_click(world.blair, "notes"))
    page.get_by_role("button", name=re.compile("Unsubscribe from")).click()
    expect(page.locator("main")).to_contain_text("You are unsubscribed")
    axe.check("one-click answer")
    page.goto(base + "/p")
    page.get_by_label("Your email address").fill("alex@example.com")
    page.get_by_role("button", name="Email me a link").click()
    expect(page).to_have_url(base + "/p")
    axe.check("fresh link sent")

    # Answers only a crafted request reaches: fetched here, shown by the browser.
    csrf = token_of(client, "/p")
    show(page, base + "/p", client.post("/p", data={"csrf_token": csrf, "email": "nope"}))
    expect(page.locator("#fresh-link-error")).to_be_visible()
    axe.check("fresh link refused")
    refused = client.post(
        public_pages.manage(world.alex) + "/business-address",
        data={"csrf_token": csrf, "email": "no-at-sign"},
    )
    assert refused.status_code == 409
    show(page, base + "/refused", refused)
    axe.check("refused change")

    manage = public_pages.manage(world.alex)
    days = app.config["MANAGE_LINK_MAX_AGE_DAYS"]
    app.config["MANAGE_LINK_MAX_AGE_DAYS"] = -1  # every manage link is now past its age
    try:
        page.goto(base + manage)
        expect(page.locator("main")).to_contain_text("saying no never expires")
        axe.check("withdraw-only (expired link)")
        expired = client.post(
            f"{manage}/lists/extras", data={"csrf_token": csrf, "subscribed": "yes"}
        )
        assert expired.status_code == 403
        show(page, base + "/expired", expired)
        axe.check("link expired")
    finally:
        app.config["MANAGE_LINK_MAX_AGE_DAYS"] = days

    assert len(axe.checked) == 26
    assert axe.found == {}
