"""Every rule of the one answer to "may I send list X to this address now?"."""

import json
from datetime import date, datetime

import pytest
from helpers import events_of

from preference_center import addresses, consent, may_send
from preference_center.consent import Via
from preference_center.extensions import db

VIA = Via(channel="preference_page", actor="contact")


@pytest.fixture
def lists(make):
    return make.list("notes", audience="personal"), make.list("insights")


def test_a_subscribed_contact_may_be_sent(make, lists):
    _, insights = lists
    contact = make.contact("Pat@Example.com")
    make.subscription(contact, insights, basis="express")

    answer = may_send.check(" pat@example.COM ", "insights")

    assert answer.allowed is True
    assert (answer.status, answer.basis, answer.deliver_to) == (
        "subscribed",
        "express",
        "pat@example.com",
    )
    assert answer.expires_at is None and answer.reason


@pytest.mark.parametrize("state", ["invited", "pending", "unsubscribed"])
def test_states_that_are_not_sendable(make, lists, state):
    _, insights = lists
    contact = make.contact("pat@example.com")
    subscription = make.subscription(contact, insights, state="invited", basis="none")
    subscription.state = state  # arrange the state directly; the rule is what is tested
    db.session.commit()

    answer = may_send.check("pat@example.com", "insights")

    assert (answer.allowed, answer.status) == (False, state)
    assert answer.reason


def test_implied_consent_past_its_end_is_expired_without_any_job(make, lists):
    _, insights = lists
    contact = make.contact("pat@example.com")
    make.subscription(contact, insights, basis="implied_inquiry", basis_date=date(2026, 10, 10))

    before = may_send.check("pat@example.com", "insights", now=datetime(2027, 4, 9))
    after = may_send.check("pat@example.com", "insights", now=datetime(2027, 4, 11))

    assert (before.allowed, before.expires_at) == (True, "2027-04-10T00:00:00.000000Z")
    assert (after.allowed, after.status) == (False, "expired")


def test_unknown_address_unknown_list_and_not_on_the_list(make, lists):
    make.contact("pat@example.com")
    assert may_send.check("nobody@example.com", "insights").status == "unknown"
    assert may_send.check("pat@example.com", "no-such-list").status == "unknown_list"
    not_on = may_send.check("pat@example.com", "insights")
    assert (not_on.allowed, not_on.status) == (False, "not_subscribed")


def test_business_list_while_business_contact_is_declined(make, lists):
    notes, insights = lists
    contact = make.contact("pat@example.com")
    make.subscription(contact, notes, basis="personal")
    make.subscription(contact, insights)
    consent.decline_business_contact(contact, VIA)
    db.session.commit()

    assert may_send.check("pat@example.com", "insights").allowed is False
    assert may_send.check("pat@example.com", "notes").allowed is True


def verified_business_address(contact, email="pat@work.example"):
    address = addresses.add_business_address(contact, email, VIA)
    fingerprint = addresses.address_fingerprint(address.email)
    addresses.verify_business_address(contact, fingerprint, VIA)
    db.session.commit()
    return address


def test_routed_business_list_goes_only_to_the_business_address(make, lists):
    notes, insights = lists
    contact = make.contact("pat@example.com")
    make.subscription(contact, notes, basis="personal")
    make.subscription(contact, insights)
    verified_business_address(contact)

    asked_personal = may_send.check("pat@example.com", "insights")
    asked_business = may_send.check("pat@work.example", "insights")
    personal_list = may_send.check("pat@example.com", "notes")
    personal_list_at_work = may_send.check("pat@work.example", "notes")

    assert (asked_personal.allowed, asked_personal.status) == (False, "wrong_address")
    assert asked_personal.deliver_to == "pat@work.example"
    assert asked_business.allowed is True
    assert personal_list.allowed is True and personal_list.deliver_to == "pat@example.com"
    assert personal_list_at_work.allowed is False


def test_an_unverified_business_address_is_not_used(make, lists):
    _, insights = lists
    contact = make.contact("pat@example.com")
    make.subscription(contact, insights)
    addresses.add_business_address(contact, "pat@work.example", VIA)
    db.session.commit()

    assert may_send.check("pat@example.com", "insights").allowed is True
    assert may_send.check("pat@work.example", "insights").allowed is False


def test_a_personal_list_goes_to_work_only_when_the_contact_chooses(make, lists):
    notes, _ = lists
    contact = make.contact("pat@example.com")
    subscription = make.subscription(contact, notes, basis="personal")
    verified_business_address(contact)
    assert may_send.check("pat@example.com", "notes").deliver_to == "pat@example.com"

    addresses.route_list(subscription, "business", VIA)
    db.session.commit()

    assert may_send.check("pat@work.example", "notes").allowed is True
    assert events_of(contact)[-1].action == "route_list"


def test_the_cli_prints_the_same_json(make, lists, runner):
    _, insights = lists
    contact = make.contact("pat@example.com")
    make.subscription(contact, insights)

    result = runner.invoke(args=["may-send", "pat@example.com", "insights"])

    assert result.exit_code == 0
    assert json.loads(result.output) == may_send.check("pat@example.com", "insights").as_dict()
    assert json.loads(result.output)["allowed"] is True
