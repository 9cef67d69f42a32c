"""Every legal basis has its plain sentence on the contact's page."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

import pytest

from preference_center import consent
from preference_center.consent import Via
from preference_center.extensions import db
from preference_center.models import utcnow
from preference_center.wording import day

ADDED = datetime(2025, 3, 4, 10, 0)


def page_text(client, manage_path, contact) -> str:
    response = client.get(manage_path(contact))
    assert response.status_code == 200
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def recent(days: int):
    return (utcnow() - timedelta(days=days)).date()


@pytest.mark.parametrize(
    ("audience", "fields", "sentence"),
    [
        (
            "business",
            {"basis": "express", "source": "seminar sign-in sheet"},
            "Dana Reyes added you on 4 Mar 2025: you said yes through seminar sign-in sheet.",
        ),
        (
            "business",
            {"basis": "double_opt_in", "source": "harbor.example/signup"},
            "You subscribed on 4 Mar 2025 on harbor.example/signup and confirmed by email.",
        ),
        (
            "personal",
            {"basis": "personal", "source": "address book"},
            "Dana Reyes added you on 4 Mar 2025 because you know each other personally.",
        ),
        (
            "business",
            {"basis": "none", "source": "business cards", "state": "invited"},
            "Dana Reyes added you on 4 Mar 2025 from business cards. "
            "You get nothing until you say yes.",
        ),
        (
            "business",
            {"basis": "none", "source": "networking import", "state": "invited"},
            "Dana Reyes added you on 4 Mar 2025 from a LinkedIn connections export. "
            "A connection is not consent, so you get nothing until you say yes.",
        ),
    ],
)
def test_the_sentence_for_each_basis(client, make, manage_path, audience, fields, sentence):
    mailing_list = make.list("the-list", audience=audience)
    contact = make.contact("pat@example.com")
    make.subscription(contact, mailing_list, added_at=ADDED, **fields)

    assert sentence in page_text(client, manage_path, contact)


@pytest.mark.parametrize(
    ("basis", "months", "because"),
    [
        ("implied_purchase", 24, "because you bought from Harbor Financial on"),
        ("implied_inquiry", 6, "because you asked Harbor Financial a question on"),
    ],
)
def test_implied_consent_says_when_it_ends(client, make, manage_path, basis, months, because):
    insights = make.list("insights")
    contact = make.contact("pat@example.com")
    basis_date = recent(20)
    make.subscription(contact, insights, basis=basis, basis_date=basis_date, added_at=ADDED)
    ends = consent.add_months(basis_date, months)

    text = page_text(client, manage_path, contact)

    assert (
        f"Dana Reyes added you on 4 Mar 2025 {because} {day(basis_date)}. "
        f"This ends on {day(ends)} unless you say yes."
    ) in text


def test_ended_implied_consent_reads_the_same_before_and_after_the_job(client, make, manage_path):
    insights = make.list("insights")
    contact = make.contact("pat@example.com")
    subscription = make.subscription(
        contact, insights, basis="implied_inquiry", basis_date=recent(20)
    )
    subscription.expires_at = datetime(2026, 1, 10)  # as if the months had passed
    db.session.commit()
    ended = "This ended on 10 Jan 2026."

    assert ended in page_text(client, manage_path, contact)
    assert consent.expire_due() == 1
    db.session.commit()
    text = page_text(client, manage_path, contact)
    assert ended in text
    assert "Ended — nothing is sent unless you say yes" in text


def test_the_contacts_own_yes_and_confirmation(client, make, manage_path):
    notes = make.list("notes", audience="personal")
    insights = make.list("insights")
    contact = make.contact("pat@example.com")
    page = Via(channel="preference_page", actor="contact")
    consent.opt_in(contact, notes, page, evidence="ticked")
    consent.opt_in(contact, insights, page, evidence="ticked")
    consent.confirm(consent.find_subscription(contact, insights), page)
    db.session.commit()
    today = day(utcnow())

    text = page_text(client, manage_path, contact)

    assert f"You said yes on {today} on this page." in text
    assert f"You subscribed on {today} on this page and confirmed by email on {today}." in text
