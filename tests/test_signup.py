"""The hosted signup form: double opt-in, same answer for known and unknown, honeypot,
rate limits, its own CSRF token, evidence, and framing only from EMBED_ORIGINS."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from helpers import all_events, events_of, state_of

from preference_center import mailer
from preference_center.extensions import db, limiter
from preference_center.models import Address, Contact, OutboxMessage, Subscription

SHOP = "https://shop.example"


@pytest.fixture
def insights(make):
    return make.list("market-insights", name="Market Insights")


@pytest.fixture
def offers(make):
    return make.list("offers-events", name="Offers & Events")


@pytest.fixture(autouse=True)
def fresh_limits(app):
    limiter.reset()
    app.config["EMBED_ORIGINS"] = [SHOP]


def form_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the form has no token"
    return match.group(1)


def sign_up(client, path="/s/market-insights", **fields):
    page = client.get(path, headers={"Referer": fields.pop("referer", "")} or {})
    assert page.status_code == 200
    data = {"csrf_token": form_token(page.get_data(as_text=True)), **fields}
    return client.post("/s", data=data)


def outbox() -> list[OutboxMessage]:
    db.session.commit()
    return list(db.session.execute(db.select(OutboxMessage).order_by(OutboxMessage.id)).scalars())


def contact_by(email: str) -> Contact | None:
    db.session.commit()
    address = db.session.execute(db.select(Address).filter_by(email=email)).scalar_one_or_none()
    return address.contact if address else None


def visible(html: str) -> str:
    """The answer without its per-request parts (nothing there may differ)."""
    return re.sub(r'value="[^"]+"', "", html)


def test_the_form_has_email_optional_name_and_a_hidden_honeypot(client, insights):
    html = client.get("/s/market-insights").get_data(as_text=True)
    assert 'name="email"' in html and 'name="name"' in html
    honeypot = re.search(r'<p class="honeypot">(.*?)</p>', html, re.S).group(1)
    assert 'name="website"' in honeypot
    assert 'autocomplete="off"' in honeypot and 'tabindex="-1"' in honeypot
    assert "Leave this field empty" in honeypot
    assert "Market Insights" in html


def test_several_lists_are_offered_each_unticked(client, insights, offers):
    html = client.get("/s?lists=market-insights,offers-events").get_data(as_text=True)
    boxes = re.findall(r'<input type="checkbox"[^>]*name="lists"[^>]*>', html)
    assert len(boxes) == 2
    assert not any("checked" in box for box in boxes)


def test_an_unknown_or_archived_list_is_a_clear_404(client, make):
    assert client.get("/s/nope").status_code == 404
    assert client.get("/s?lists=").status_code == 404
    archived = make.list("old-news")
    archived.archived_at = archived.created_at
    db.session.commit()
    assert client.get("/s/old-news").status_code == 404


def test_signing_up_makes_it_pending_and_emails_a_confirmation(client, insights, smtp):
    response = sign_up(client, email="New.Person@Example.com", name="New Person")
    assert response.status_code == 200
    assert "Check your inbox" in response.get_data(as_text=True)
    contact = contact_by("new.person@example.com")
    assert contact.name == "New Person"
    assert state_of(contact, insights) == "pending"
    assert mailer.deliver_due() == (1, 0)
    [received] = smtp.messages
    assert received.rcpt_tos == ["new.person@example.com"]
    assert "/confirm/" in received.text()


def test_the_answer_is_the_same_for_a_known_and_an_unknown_address(client, make, insights):
    known = make.contact("known@example.com", name="Kim")
    make.subscription(known, insights)
    first = sign_up(client, email="known@example.com", name="Someone Else")
    second = sign_up(client, email="stranger@example.com")
    assert first.status_code == second.status_code == 200
    assert visible(first.get_data(as_text=True)) == visible(second.get_data(as_text=True))
    # A stranger typing a known address renames nobody and changes nothing.
    assert contact_by("known@example.com").name == "Kim"
    assert state_of(known, insights) == "subscribed"


def test_a_filled_honeypot_gets_the_same_answer_and_nothing_is_written(client, insights):
    events_before = len(all_events())
    bot = sign_up(client, email="bot@example.com", website="https://spam.example")
    person = sign_up(client, email="person@example.com")
    assert visible(bot.get_data(as_text=True)) == visible(person.get_data(as_text=True))
    assert contact_by("bot@example.com") is None
    assert [m.to_email for m in outbox()] == ["person@example.com"]
    assert len(all_events()) == events_before + 1


def test_a_post_without_or_with_a_forged_token_is_refused(client, insights):
    for token in (None, "forged", form_token(client.get("/s/market-insights").text) + "x"):
        data = {"email": "x@example.com"} | ({"csrf_token": token} if token else {})
        response = client.post("/s", data=data)
        assert response.status_code == 400
        assert "reload the page" in response.get_data(as_text=True)
    assert contact_by("x@example.com") is None and outbox() == []


def test_a_token_for_one_list_cannot_sign_up_for_another(client, insights, offers):
    token = form_token(client.get("/s/market-insights").get_data(as_text=True))
    response = client.post(
        "/s", data={"csrf_token": token, "email": "y@example.com", "lists": "offers-events"}
    )
    assert response.status_code == 200
    contact = contact_by("y@example.com")
    assert state_of(contact, insights) == "pending"
    assert state_of(contact, offers) is None


def test_a_bad_address_or_no_list_is_a_clear_400(client, insights, offers):
    response = sign_up(client, email="not an address")
    assert response.status_code == 400
    assert "valid email address" in response.get_data(as_text=True)
    response = sign_up(client, "/s?lists=market-insights,offers-events", email="z@example.com")
    assert response.status_code == 400
    assert "Choose at least one list" in response.get_data(as_text=True)
    assert outbox() == []


def test_only_the_ticked_lists_are_asked(client, insights, offers):
    response = sign_up(
        client,
        "/s?lists=market-insights,offers-events",
        email="two@example.com",
        lists="offers-events",
    )
    assert response.status_code == 200
    contact = contact_by("two@example.com")
    assert state_of(contact, offers) == "pending"
    assert state_of(contact, insights) is None


def test_the_limit_per_address_holds_across_ips(app, client, insights):
    app.config["SIGNUP_ADDRESS_RATE_LIMIT"] = "2 per hour"
    codes = []
    for n in range(3):
        page = client.get("/s/market-insights")
        codes.append(
            client.post(
                "/s",
                data={"csrf_token": form_token(page.text), "email": "same@example.com"},
                environ_base={"REMOTE_ADDR": f"10.0.0.{n + 1}"},
            ).status_code
        )
    assert codes == [200, 200, 429]
    # Another address from the same IP is not held by it.
    assert sign_up(client, email="other@example.com").status_code == 200


def test_the_limit_per_ip_holds_across_addresses(app, client, insights):
    app.config["SIGNUP_RATE_LIMIT"] = "2 per hour"
    codes = [sign_up(client, email=f"p{n}@example.com").status_code for n in range(3)]
    assert codes == [200, 200, 429]
    page = client.get("/s/market-insights")
    other_ip = client.post(
        "/s",
        data={"csrf_token": form_token(page.text), "email": "q@example.com"},
        environ_base={"REMOTE_ADDR": "10.9.9.9"},
    )
    assert other_ip.status_code == 200


def test_the_confirmation_link_changes_nothing_on_get_and_its_button_confirms(
    client, insights, smtp
):
    sign_up(client, email="dana.fan@example.com")
    mailer.deliver_due()
    [received] = smtp.messages
    [link] = re.findall(r"https://prefs\.example\.test/confirm/\S+", received.text())
    path = urlsplit(link).path
    contact = contact_by("dana.fan@example.com")
    before = len(events_of(contact))
    page = client.get(path)
    assert page.status_code == 200 and "Yes, send me Market Insights" in page.text
    assert client.head(path).status_code == 200
    assert state_of(contact, insights) == "pending" and len(events_of(contact)) == before
    response = client.post(path, data={"csrf_token": form_token(page.text)})
    assert "Confirmed" in response.get_data(as_text=True)
    assert state_of(contact, insights) == "subscribed"
    subscription = db.session.execute(
        db.select(Subscription).filter_by(contact_id=contact.id)
    ).scalar_one()
    assert subscription.basis == "double_opt_in"
    assert subscription.source == "signup form"
    # The form's wording and origin stay in the evidence after confirming.
    assert 'The form read, in en: "Send me "Market Insights" by email.' in subscription.evidence
    assert "Confirmed by email link" in subscription.evidence


def test_the_evidence_names_wording_notice_origin_and_time(client, insights):
    insights.notice_version = 3
    db.session.commit()
    client.get("/s/market-insights")  # a page without ?origin= is the hosted page
    sign_up(client, "/s/market-insights?origin=https://shop.example/", email="e@example.com")
    sign_up(client, "/s/market-insights?origin=https://evil.example", email="f@example.com")
    sign_up(client, email="g@example.com", referer="https://shop.example/blog/post")
    evidence = {
        e.split("@")[0]: events_of(contact_by(e))[-1] for e in ("e@example.com", "f@example.com")
    }
    event = evidence["e"]
    assert (event.action, event.channel, event.to_state) == ("opt_in", "signup_form", "pending")
    assert event.notice_version == 3
    assert "on a page at https://shop.example," in event.evidence
    assert "(notice v3)" in event.evidence
    assert 'The form read, in en: "Send me "Market Insights" by email.' in event.evidence
    assert re.search(r"on \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", event.evidence)
    # An origin not in EMBED_ORIGINS is not believed: the hosted page is named instead.
    assert "on a page at https://prefs.example.test," in evidence["f"].evidence
    referred = events_of(contact_by("g@example.com"))[-1]
    assert "on a page at https://shop.example," in referred.evidence


def test_only_the_signup_pages_may_be_framed_and_only_by_embed_origins(client, insights):
    for response in (
        client.get("/s/market-insights"),
        client.get("/s?lists=market-insights"),
        client.post("/s", data={}),  # its errors too
    ):
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'self' https://shop.example" in csp
        assert "X-Frame-Options" not in response.headers
    for path in ("/p", "/healthz", "/admin/login", "/s-not-a-form"):
        response = client.get(path)
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"


def test_a_contact_who_declined_business_mail_gets_the_same_answer_and_no_mail(
    client, make, insights
):
    contact = make.contact("declined@example.com")
    contact.business_contact = "declined"
    db.session.commit()
    answer = sign_up(client, email="declined@example.com")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    assert outbox() == [] and state_of(contact, insights) is None
