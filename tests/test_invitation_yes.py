"""The invitation's "Yes": a page with one button that subscribes at once (double opt-in)."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import pytest
from helpers import csrf_token, events_of, state_of
from itsdangerous import TimestampSigner

from preference_center import invitations, mailer, may_send, tokens
from preference_center.extensions import db
from preference_center.models import Subscription


@pytest.fixture
def insights(make):
    return make.list("market-insights", name="Market Insights")


@pytest.fixture
def sam(make, insights):
    # In the US an emailed invitation is lawful (CAN-SPAM); elsewhere see test_law.py.
    contact = make.contact("sam@example.com", name="Sam", jurisdiction="US")
    make.subscription(contact, insights, state="invited", basis="none", source="networking import")
    return contact


@pytest.fixture
def yes_path(sam, insights, smtp):
    """The Yes link of the invitation as it arrived by SMTP."""
    assert invitations.send_invitations(insights).queued == 1
    db.session.commit()
    assert mailer.deliver_due() == (1, 0)
    [received] = smtp.messages
    [link] = re.findall(r"Yes, send me this: (\S+)", received.text())
    return urlsplit(link).path


def subscription_of(contact, mailing_list) -> Subscription:
    db.session.commit()
    return db.session.execute(
        db.select(Subscription).filter_by(contact_id=contact.id, list_id=mailing_list.id)
    ).scalar_one()


def test_opening_the_yes_link_changes_nothing(client, yes_path, sam, insights):
    before = len(events_of(sam))
    page = client.get(yes_path)
    assert page.status_code == 200
    assert "Yes, send me Market Insights" in page.text
    assert client.head(yes_path).status_code == 200
    assert state_of(sam, insights) == "invited"
    assert len(events_of(sam)) == before
    assert may_send.check("sam@example.com", "market-insights").allowed is False


def test_one_press_subscribes_at_once_with_double_opt_in(client, yes_path, sam, insights):
    page = client.get(yes_path)
    response = client.post(yes_path, data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 200
    assert "Done: you will receive Market Insights." in response.text
    subscription = subscription_of(sam, insights)
    assert subscription.state == "subscribed"
    assert subscription.basis == "double_opt_in"
    assert subscription.confirmed_at is not None and subscription.expires_at is None
    assert "invitation emailed on" in subscription.evidence
    event = events_of(sam)[-1]
    assert (event.action, event.from_state, event.to_state, event.basis) == (
        "accept_invitation",
        "invited",
        "subscribed",
        "double_opt_in",
    )
    assert event.channel == "email_confirmation"
    answer = may_send.check("sam@example.com", "market-insights")
    assert (answer.allowed, answer.status, answer.basis) == (True, "subscribed", "double_opt_in")
    # No second email is needed: nothing else was queued.
    assert mailer.deliver_due() == (0, 0)

    again = client.post(yes_path, data={"csrf_token": csrf_token(page.text)})
    assert "You already receive Market Insights." in again.text
    assert [e.action for e in events_of(sam)].count("accept_invitation") == 1


def test_the_post_needs_the_page_token(client, yes_path, sam, insights):
    response = client.post(yes_path)
    assert response.status_code == 400
    assert state_of(sam, insights) == "invited"


def test_a_link_for_another_contact_or_list_is_refused(client, make, sam, insights):
    other_list = make.list("offers-events", name="Offers & Events")
    stranger = make.contact("stranger@example.com")
    genuine = client.get("/yes/" + tokens.sign(tokens.INVITATION_YES, sam, l="market-insights"))
    form = {"csrf_token": csrf_token(genuine.text)}
    for token in (
        tokens.sign(tokens.INVITATION_YES, sam, l="offers-events"),  # sam is not invited there
        tokens.sign(tokens.INVITATION_YES, stranger, l="market-insights"),
        tokens.sign(tokens.CONFIRM, sam, l="market-insights"),  # another purpose
        tokens.sign(tokens.MANAGE, sam),
    ):
        assert client.get(f"/yes/{token}").status_code == 404
        assert client.post(f"/yes/{token}", data=form).status_code == 404
    assert state_of(sam, insights) == "invited"
    assert state_of(sam, other_list) is None
    assert state_of(stranger, insights) is None


def signed_days_ago(monkeypatch, days: int, purpose: str, contact, **scope) -> str:
    """A genuine token as it was signed ``days`` ago (itsdangerous' clock moved back)."""
    with monkeypatch.context() as patch:
        patch.setattr(
            TimestampSigner, "get_timestamp", lambda self: int(time.time()) - days * 86400
        )
        return tokens.sign(purpose, contact, **scope)


def test_an_expired_link_is_refused(app, client, sam, insights, monkeypatch):
    days = app.config["CONFIRM_LINK_MAX_AGE_DAYS"]
    almost = signed_days_ago(monkeypatch, days - 1, tokens.INVITATION_YES, sam, l="market-insights")
    assert client.get(f"/yes/{almost}").status_code == 200
    old = signed_days_ago(monkeypatch, days + 1, tokens.INVITATION_YES, sam, l="market-insights")
    page = client.get(f"/yes/{old}")
    assert page.status_code == 404 and "It may be old or incomplete" in page.text
    fresh = client.get("/yes/" + tokens.sign(tokens.INVITATION_YES, sam, l="market-insights"))
    assert (
        client.post(f"/yes/{old}", data={"csrf_token": csrf_token(fresh.text)}).status_code == 404
    )
    assert state_of(sam, insights) == "invited"


def test_someone_who_declined_business_mail_is_told_why_and_nothing_changes(
    client, yes_path, sam, insights
):
    sam.business_contact = "declined"
    db.session.commit()
    page = client.get(yes_path)
    response = client.post(yes_path, data={"csrf_token": csrf_token(page.text)})
    assert response.status_code == 409
    assert "You said no to business messages" in response.text
    assert state_of(sam, insights) == "invited"
