"""Personal is not business: the page's sections, the business choice, the address."""

import re

import pytest
from helpers import csrf_token, events_of, state_of

from preference_center import mailer
from preference_center.extensions import db
from preference_center.models import Address


@pytest.fixture
def morgan(make):
    notes = make.list("personal-notes", audience="personal", name="Dana's personal notes")
    insights = make.list("market-insights", name="Market Insights")
    offers = make.list("offers-events", name="Offers & Events")
    contact = make.contact("morgan@example.com", "Morgan Lee")
    make.subscription(contact, notes, basis="personal")
    make.subscription(contact, insights)
    make.subscription(contact, offers)
    return contact, notes, insights, offers


def page_and_token(client, manage_path, contact):
    html = client.get(manage_path(contact)).text
    return html, csrf_token(html)


def test_the_page_has_a_personal_and_a_business_section(client, manage_path, morgan):
    contact, *_ = morgan
    html, _ = page_and_token(client, manage_path, contact)
    personal = html[html.index('id="personal-heading"') : html.index('id="business-heading"')]
    business = html[html.index('id="business-heading"') :]
    assert "personal-notes" in personal and "market-insights" not in personal
    assert "market-insights" in business and "offers-events" in business
    assert "Business messages from Harbor Financial" in business


def test_no_thanks_withdraws_every_business_list_in_one_request(client, manage_path, morgan):
    contact, notes, insights, offers = morgan
    _, token = page_and_token(client, manage_path, contact)
    before = len(events_of(contact))

    response = client.post(
        f"{manage_path(contact)}/business",
        data={"business": "declined"},
        headers={"HX-Request": "true", "X-CSRFToken": token},
    )

    assert response.status_code == 200
    assert "Personal messages from the sender are not affected." in response.text
    assert state_of(contact, insights) == state_of(contact, offers) == "unsubscribed"
    assert state_of(contact, notes) == "subscribed"
    new = events_of(contact)[before:]
    assert sorted(e.action for e in new) == ["decline_business", "withdraw", "withdraw"]
    assert len({e.request_id for e in new}) == 1
    assert contact.business_contact == "declined"


def test_allowing_business_again_subscribes_to_nothing(client, manage_path, morgan):
    contact, _, insights, _ = morgan
    _, token = page_and_token(client, manage_path, contact)
    headers = {"X-CSRFToken": token}
    client.post(f"{manage_path(contact)}/business", data={"business": "declined"}, headers=headers)

    refused = client.post(
        f"{manage_path(contact)}/lists/market-insights", data={"subscribed": "yes"}, headers=headers
    )
    assert refused.status_code == 409 and "Allow business messages first" in refused.text

    response = client.post(
        f"{manage_path(contact)}/business", data={"business": "allowed"}, headers=headers
    )

    assert response.status_code == 303
    assert state_of(contact, insights) == "unsubscribed"
    assert events_of(contact)[-1].action == "allow_business"


def deliver(app):
    db.session.commit()  # end this thread's snapshot: the outbox worker writes next
    return mailer.deliver_due()


def emailed_link(mail) -> str:
    return re.search(r"https://prefs\.example\.test(/verify-address/\S+)", mail.text()).group(1)


def press_button_behind(client, contact, link) -> None:
    """Open an emailed link (which changes nothing), then press its button."""
    before = len(events_of(contact))
    shown = client.get(link)
    client.head(link)
    assert shown.status_code == 200
    assert len(events_of(contact)) == before
    assert client.post(link, data={"csrf_token": csrf_token(shown.text)}).status_code == 200


def test_business_address_add_approve_verify_switch_and_remove(
    app, client, manage_path, morgan, smtp
):
    contact, _, insights, _ = morgan
    _, token = page_and_token(client, manage_path, contact)
    headers = {"X-CSRFToken": token}
    base = manage_path(contact)

    added = client.post(
        f"{base}/business-address", data={"email": "Morgan@Work.example"}, headers=headers
    )
    assert added.status_code == 303
    page = client.get(base).text
    assert "m***@work.example" in page and "not confirmed yet" in page
    # The page says where the first link really went: the address on file, to approve.
    assert "First approve the change from the link we sent to m***@example.com" in page

    # First the address on file approves: a forwarded manage link is not enough.
    assert deliver(app) == (1, 0)
    [approval] = smtp.messages
    assert approval.rcpt_tos == ["morgan@example.com"]
    assert "m***@work.example" in approval.text()
    press_button_behind(client, contact, emailed_link(approval))
    db.session.refresh(contact)
    assert contact.business_address.verified_at is None

    # Then the new address proves it is the contact's.
    assert deliver(app) == (1, 0)
    verification = smtp.messages[1]
    assert verification.rcpt_tos == ["morgan@work.example"]
    assert "/p/" not in verification.text()  # no manage link to an unverified address
    press_button_behind(client, contact, emailed_link(verification))
    assert [e.action for e in events_of(contact)[-4:]] == [
        "business_address_added",
        "business_address_approved",
        "business_address_verified",
        "route_business_mail",
    ]
    db.session.refresh(contact)
    assert contact.business_mail_to_business_address is True

    switched = client.post(
        f"{base}/business-address/route", data={"to": "personal"}, headers=headers
    )
    assert switched.status_code == 303
    assert events_of(contact)[-1].to_state == "personal"

    removed = client.post(f"{base}/business-address/remove", headers=headers)
    assert removed.status_code == 303
    assert events_of(contact)[-1].action == "business_address_removed"
    assert db.session.execute(db.select(Address).filter_by(kind="business")).first() is None
    assert state_of(contact, insights) == "subscribed"


def test_a_business_address_cannot_take_someone_elses(client, manage_path, morgan, make):
    contact, *_ = morgan
    make.contact("taken@example.com")
    _, token = page_and_token(client, manage_path, contact)
    before = len(events_of(contact))

    response = client.post(
        f"{manage_path(contact)}/business-address",
        data={"email": "taken@example.com"},
        headers={"X-CSRFToken": token},
    )

    assert response.status_code == 409
    assert "We can&#39;t use that address here" in response.text
    assert len(events_of(contact)) == before


def test_switching_to_an_unverified_address_is_refused(client, manage_path, morgan):
    contact, *_ = morgan
    _, token = page_and_token(client, manage_path, contact)
    headers = {"X-CSRFToken": token}
    client.post(
        f"{manage_path(contact)}/business-address",
        data={"email": "m@work.example"},
        headers=headers,
    )

    response = client.post(
        f"{manage_path(contact)}/business-address/route", data={"to": "business"}, headers=headers
    )

    assert response.status_code == 409 and "Verify your business address first" in response.text
