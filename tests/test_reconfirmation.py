"""send-reconfirmations: one polite "keep receiving?" before implied consent ends,
never twice for the same consent, and a one-button page that makes it lasting."""

from __future__ import annotations

import re
from datetime import date, timedelta
from urllib.parse import urlsplit

import pytest
from helpers import csrf_token, events_of

from preference_center import mailer, may_send, reconfirmations, wording
from preference_center.extensions import db
from preference_center.models import OutboxMessage, Subscription, utcnow


@pytest.fixture
def insights(make):
    return make.list("market-insights", name="Market Insights")


def implied(make, insights, email: str, ends_in: timedelta, basis="implied_purchase"):
    """A contact whose implied consent ends ``ends_in`` from now."""
    contact = make.contact(email, name=email.split("@")[0].title())
    subscription = make.subscription(
        contact,
        insights,
        basis=basis,
        basis_date=date.today() - timedelta(days=30),
        evidence="bought a fund report",
    )
    subscription.expires_at = utcnow().replace(microsecond=0) + ends_in
    db.session.commit()
    return contact, subscription


def queued_to() -> list[str]:
    db.session.commit()
    rows = db.session.execute(
        db.select(OutboxMessage).filter_by(kind="reconfirmation").order_by(OutboxMessage.id)
    ).scalars()
    return [row.to_email for row in rows]


def test_the_window_edges(make, insights):
    now = utcnow().replace(microsecond=0)
    cases = {
        "inside@example.com": timedelta(days=29),
        "edge@example.com": timedelta(days=30),
        "outside@example.com": timedelta(days=30, seconds=1),
        "ended@example.com": timedelta(0),
        "inquiry@example.com": timedelta(days=3),
    }
    for email, ends_in in cases.items():
        basis = "implied_inquiry" if email.startswith("inquiry") else "implied_purchase"
        _contact, subscription = implied(make, insights, email, ends_in, basis=basis)
        subscription.expires_at = now + ends_in
    lasting = make.contact("lasting@example.com")
    make.subscription(lasting, insights, basis="double_opt_in")
    db.session.commit()
    assert reconfirmations.send_reconfirmations(30, now=now) == 3
    db.session.commit()
    assert sorted(queued_to()) == ["edge@example.com", "inquiry@example.com", "inside@example.com"]


def test_never_twice_for_the_same_consent(runner, make, insights):
    implied(make, insights, "once@example.com", timedelta(days=10))
    first = runner.invoke(args=["send-reconfirmations"])
    assert first.exit_code == 0 and "1 reconfirmation(s) queued" in first.output
    second = runner.invoke(args=["send-reconfirmations", "--days-before", "60"])
    assert "0 reconfirmation(s) queued" in second.output
    assert queued_to() == ["once@example.com"]


def test_days_before_widens_the_window(runner, make, insights):
    implied(make, insights, "later@example.com", timedelta(days=45))
    assert "0 reconfirmation(s)" in runner.invoke(args=["send-reconfirmations"]).output
    result = runner.invoke(args=["send-reconfirmations", "--days-before", "50"])
    assert "1 reconfirmation(s)" in result.output
    assert runner.invoke(args=["send-reconfirmations", "--days-before", "0"]).exit_code == 2


def test_declined_business_mail_gets_no_reconfirmation(runner, make, insights):
    contact, _ = implied(make, insights, "no-thanks@example.com", timedelta(days=5))
    contact.business_contact = "declined"
    db.session.commit()
    runner.invoke(args=["send-reconfirmations"])
    assert queued_to() == []


def test_the_message_and_its_button_make_it_lasting(runner, client, make, insights, smtp):
    contact, subscription = implied(make, insights, "keeper@example.com", timedelta(days=20))
    ends = subscription.expires_at
    runner.invoke(args=["send-reconfirmations"])
    assert mailer.deliver_due() == (1, 0)
    [received] = smtp.messages
    assert received.message["Subject"] == "Keep receiving Market Insights?"
    assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = received.text()
    assert f"That permission ends on {wording.day(ends)}." in text
    [link] = re.findall(r"https://prefs\.example\.test/keep/\S+", text)
    path = urlsplit(link).path

    before = len(events_of(contact))
    page = client.get(path)
    assert page.status_code == 200
    assert f"This ends on {wording.day(ends)} unless you say yes." in page.text
    assert "Yes, keep sending me Market Insights" in page.text
    assert client.head(path).status_code == 200
    assert len(events_of(contact)) == before
    assert may_send.check("keeper@example.com", "market-insights").expires_at is not None

    response = client.post(path, data={"csrf_token": csrf_token(page.text)})
    assert "Done: you will keep receiving Market Insights." in response.text
    db.session.commit()
    kept = db.session.get(Subscription, subscription.id)
    assert (kept.state, kept.basis, kept.expires_at) == ("subscribed", "double_opt_in", None)
    event = events_of(contact)[-1]
    assert (event.action, event.basis, event.channel) == (
        "affirm",
        "double_opt_in",
        "email_confirmation",
    )
    answer = may_send.check("keeper@example.com", "market-insights")
    assert (answer.allowed, answer.basis, answer.expires_at) == (True, "double_opt_in", None)
    # Pressing again changes nothing more.
    again = client.post(path, data={"csrf_token": csrf_token(page.text)})
    assert "already receive Market Insights for good" in again.text
    assert len(events_of(contact)) == before + 1


def test_the_keep_link_needs_its_own_purpose_and_csrf(client, make, insights):
    from preference_center import tokens

    contact, _ = implied(make, insights, "purpose@example.com", timedelta(days=20))
    assert (
        client.get("/keep/" + tokens.sign(tokens.CONFIRM, contact, l="market-insights")).status_code
        == 404
    )
    good = "/keep/" + tokens.sign(tokens.RECONFIRM, contact, l="market-insights")
    assert client.post(good).status_code == 400
