"""The signup form in Chromium: with and without JavaScript, and framed by another site."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import state_of
from playwright.sync_api import expect

from preference_center.extensions import db
from preference_center.models import Address

pytestmark = pytest.mark.browser


@pytest.fixture
def insights(make, live_server):
    return make.list("market-insights", name="Market Insights")


def contact_of(email: str):
    db.session.commit()
    return db.session.execute(db.select(Address).filter_by(email=email)).scalar_one().contact


@pytest.fixture
def shop(live_server):
    """Another site (``localhost``, so another site than 127.0.0.1) embedding the form."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    origin = f"http://localhost:{server.server_port}"

    def embed(path: str) -> str:
        pages["/embed"] = (
            "<!doctype html><title>Shop</title><h1>Our shop</h1>"
            f'<iframe title="Sign up" src="{live_server.url}{path}" width="600" height="600">'
            "</iframe>"
        )
        return f"{origin}/embed"

    yield origin, embed
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.mark.parametrize("javascript", [True, False])
def test_signing_up_in_the_browser(browser, live_server, insights, javascript):
    context = browser.new_context(java_script_enabled=javascript)
    page = context.new_page()
    page.goto(f"{live_server.url}/s/market-insights")
    page.get_by_label("Email address").fill(f"browser-{javascript}@example.com".lower())
    page.get_by_label("Name (optional)").fill("Browser Person")
    if javascript:
        page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    if javascript:
        assert page.evaluate("window.notReloaded") is True  # htmx swapped the form
    contact = contact_of(f"browser-{javascript}@example.com".lower())
    assert state_of(contact, insights) == "pending"
    # People never see the honeypot.
    expect(page.locator("#signup-website")).to_have_count(0)
    context.close()


def test_the_honeypot_is_not_visible_to_people(page, live_server, insights):
    page.goto(f"{live_server.url}/s/market-insights")
    expect(page.get_by_label("Email address")).to_be_visible()
    expect(page.locator("#signup-website")).not_to_be_in_viewport()


def test_an_allowed_site_can_frame_the_form_and_sign_up_through_it(
    app, page, live_server, insights, shop
):
    origin, embed = shop
    app.config["EMBED_ORIGINS"] = [origin]
    page.goto(embed(f"/s/market-insights?origin={origin}"))
    frame = page.frame_locator("iframe")
    frame.get_by_label("Email address").fill("framed@example.com")
    frame.get_by_role("button", name="Sign up").click()
    expect(frame.get_by_role("heading", name="Check your inbox")).to_be_visible()
    contact = contact_of("framed@example.com")
    assert state_of(contact, insights) == "pending"
    assert f"on a page at {origin}," in contact.subscriptions[0].evidence


def test_another_site_cannot_frame_the_form_or_any_other_page(
    app, page, live_server, insights, shop
):
    _origin, embed = shop
    app.config["EMBED_ORIGINS"] = ["https://shop.example"]
    for path in ("/s/market-insights", "/p"):
        page.goto(embed(path))
        # Chromium replaces a frame its frame-ancestors refuse with its error page.
        frame = page.frames[-1]
        assert frame is not page.main_frame
        frame.wait_for_url(re.compile(r"^chrome-error://"))
        assert frame.locator("input").count() == 0
