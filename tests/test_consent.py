"""The state machine and its events: every change logged, no change no event."""

from datetime import date, datetime

import pytest
from helpers import events_of, state_of

from preference_center import consent
from preference_center.consent import ConsentError, Provenance, Via
from preference_center.extensions import db
from preference_center.models import OutboxMessage, Subscription

PAGE = Via(channel="preference_page", actor="contact", ip="198.51.100.4", user_agent="UA/1")


def test_opt_in_from_the_page_waits_for_the_emailed_confirmation(make):
    notes = make.list("notes", audience="personal")
    contact = make.contact("pat@example.com")

    outcome = consent.opt_in(contact, notes, PAGE, evidence="ticked on the page (notice v1)")
    db.session.commit()

    assert outcome == consent.OPTED_IN
    assert state_of(contact, notes) == "pending"
    [event] = events_of(contact)
    assert (event.action, event.from_state, event.to_state) == ("opt_in", "none", "pending")
    assert (event.channel, event.actor, event.basis) == ("preference_page", "contact", "express")
    assert (event.ip, event.user_agent, event.notice_version) == ("198.51.100.4", "UA/1", 1)
    assert event.occurred_at <= datetime.utcnow()  # noqa: DTZ003 - naive UTC by design

    assert consent.confirm(consent.find_subscription(contact, notes), PAGE) is True
    db.session.commit()
    assert state_of(contact, notes) == "subscribed"
    assert events_of(contact)[-1].basis == "double_opt_in"


def test_saying_yes_to_implied_consent_makes_it_lasting_after_confirmation(make):
    insights = make.list("insights")
    contact = make.contact("pat@example.com")
    subscription = make.subscription(
        contact, insights, basis="implied_purchase", basis_date=date(2026, 1, 5)
    )

    assert consent.opt_in(contact, insights, PAGE, evidence="yes") == consent.RECONFIRMING
    db.session.commit()
    assert subscription.expires_at is not None  # nothing changes before the confirmation
    assert consent.confirm(subscription, PAGE) is True
    db.session.commit()

    assert (subscription.basis, subscription.expires_at) == ("double_opt_in", None)
    assert events_of(contact)[-1].action == "affirm"


def test_opt_in_to_a_business_list_is_pending_and_queues_a_confirmation(make):
    insights = make.list("insights")
    contact = make.contact("pat@example.com")

    consent.opt_in(contact, insights, PAGE, evidence="ticked")
    db.session.commit()

    assert state_of(contact, insights) == "pending"
    [mail] = db.session.execute(db.select(OutboxMessage)).scalars().all()
    assert (mail.kind, mail.to_email) == ("confirmation", "pat@example.com")
    assert "/confirm/" in mail.text_body


def test_repeating_a_change_writes_nothing(make):
    notes = make.list("notes", audience="personal")
    contact = make.contact("pat@example.com")
    subscription = make.subscription(contact, notes, basis="personal")
    before = len(events_of(contact))

    assert consent.withdraw(subscription, PAGE) is True
    assert consent.withdraw(subscription, PAGE) is False
    db.session.commit()

    assert len(events_of(contact)) == before + 1


def test_withdraw_everything_logs_one_event_per_changed_list(make):
    notes = make.list("notes", audience="personal")
    insights = make.list("insights")
    offers = make.list("offers")
    contact = make.contact("pat@example.com")
    make.subscription(contact, notes, basis="personal")
    make.subscription(contact, insights)
    gone = make.subscription(contact, offers)
    consent.withdraw(gone, PAGE)
    db.session.commit()
    before = len(events_of(contact))

    assert consent.withdraw_everything(contact, PAGE) == 2
    db.session.commit()

    assert {state_of(contact, m) for m in (notes, insights, offers)} == {"unsubscribed"}
    assert len(events_of(contact)) == before + 2


def test_events_chain_per_contact(make):
    notes = make.list("notes", audience="personal")
    contact = make.contact("pat@example.com")
    subscription = make.subscription(contact, notes, basis="personal")
    consent.withdraw(subscription, PAGE)
    db.session.commit()

    first, second = events_of(contact)
    assert first.prev_hash is None
    assert second.prev_hash == first.hash
    assert contact.chain_head == second.hash


@pytest.mark.parametrize(
    ("basis", "state", "audience", "message"),
    [
        ("none", "subscribed", "business", "only invite"),
        ("personal", "subscribed", "business", "no basis for the business list"),
        ("implied_inquiry", "subscribed", "business", "needs the purchase or inquiry date"),
        ("guesswork", "subscribed", "business", "Unknown basis"),
    ],
)
def test_provenance_rules_refuse_bad_writes(make, basis, state, audience, message):
    mailing_list = make.list("some-list", audience=audience)
    contact = make.contact("pat@example.com")
    provenance = Provenance(source="import", added_by="Dana", basis=basis)

    with pytest.raises(ConsentError, match=message):
        consent.place(contact, mailing_list, state, provenance, Via("import", "cli"))
    db.session.rollback()

    assert state_of(contact, mailing_list) is None
    assert events_of(contact) == []


def test_missing_provenance_is_refused(make):
    insights = make.list("insights")
    contact = make.contact("pat@example.com")
    with pytest.raises(ConsentError, match="source, added_by missing"):
        consent.place(
            contact, insights, "invited", Provenance("", " ", "none"), Via("import", "cli")
        )


def test_an_import_never_resubscribes_someone_who_withdrew(make):
    insights = make.list("insights")
    contact = make.contact("pat@example.com")
    subscription = make.subscription(contact, insights)
    consent.withdraw(subscription, PAGE)
    db.session.commit()
    before = len(events_of(contact))

    _, outcome = consent.place(
        contact,
        insights,
        "subscribed",
        Provenance("import", "Dana", "express", "row 2"),
        Via("import", "cli"),
    )

    assert outcome == "suppressed"
    assert state_of(contact, insights) == "unsubscribed"
    assert len(events_of(contact)) == before


def test_an_inquiry_on_10_january_is_sendable_on_9_july_and_not_on_11_july():
    expires_at = consent.implied_expiry("implied_inquiry", date(2026, 1, 10))
    subscription = Subscription(state="subscribed", expires_at=expires_at)

    assert consent.effective_state(subscription, datetime(2026, 7, 9, 23, 59)) == "subscribed"
    assert consent.effective_state(subscription, datetime(2026, 7, 11)) == "expired"


def test_implied_inquiry_placed_today_carries_its_end(make):
    insights = make.list("insights")
    contact = make.contact("pat@example.com")
    subscription = make.subscription(
        contact, insights, basis="implied_inquiry", basis_date=date(2026, 10, 10)
    )

    assert subscription.expires_at == datetime(2027, 4, 10)
    assert consent.effective_state(subscription, datetime(2027, 4, 9, 12)) == "subscribed"
    assert consent.effective_state(subscription, datetime(2027, 4, 11)) == "expired"


def test_expired_implied_consent_cannot_be_imported(make):
    insights = make.list("insights")
    contact = make.contact("pat@example.com")
    with pytest.raises(ConsentError, match="already ended"):
        make.subscription(contact, insights, basis="implied_inquiry", basis_date=date(2024, 1, 1))


def test_expire_consent_records_the_expiry_once(make):
    insights = make.list("insights")
    contact = make.contact("pat@example.com")
    subscription = make.subscription(
        contact, insights, basis="implied_inquiry", basis_date=date(2026, 10, 10)
    )
    before = len(events_of(contact))

    assert consent.expire_due(datetime(2027, 4, 9)) == 0
    assert consent.expire_due(datetime(2027, 4, 11)) == 1
    assert consent.expire_due(datetime(2027, 4, 12)) == 0
    db.session.commit()

    assert state_of(contact, insights) == "expired"
    last = events_of(contact)[-1]
    assert len(events_of(contact)) == before + 1
    assert (last.action, last.channel, last.actor) == ("expire", "system", "system")
    assert subscription.state == "expired"


def test_implied_purchase_lasts_two_years(make):
    insights = make.list("insights")
    contact = make.contact("pat@example.com")
    subscription = make.subscription(
        contact, insights, basis="implied_purchase", basis_date=date(2025, 3, 2)
    )
    assert subscription.expires_at == datetime(2027, 3, 2)


def test_add_months_clamps_to_the_end_of_the_month():
    assert consent.add_months(date(2025, 8, 31), 6) == date(2026, 2, 28)
    assert consent.add_months(date(2023, 8, 31), 6) == date(2024, 2, 29)
