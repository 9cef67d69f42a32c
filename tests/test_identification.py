"""Who sends: every email and every public page names the sender, its mailing address
and a contact (CASL Regulations s.2, CAN-SPAM §7704(a)(5))."""

from __future__ import annotations

from pathlib import Path

import pytest

from preference_center import mailer, tokens
from preference_center.extensions import db

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "email"
EMAIL_TEMPLATES = sorted(
    path.stem for path in TEMPLATES.glob("*.txt") if not path.name.startswith("_")
)
ADDRESS = "12 Quay Road, Halifax, NS B3J 1A1, Canada"
CONTACT = "+1 902 555 0199 · hello@quay.example"


@pytest.fixture
def identified(app):
    app.config.update(
        ORGANISATION_NAME="Quay & Co",
        SENDER_NAME="Robin Quay",
        ORGANISATION_ADDRESS=ADDRESS,
        ORGANISATION_CONTACT=CONTACT,
    )


def test_every_template_has_both_parts():
    assert len(EMAIL_TEMPLATES) >= 8
    for name in EMAIL_TEMPLATES:
        assert (TEMPLATES / f"{name}.html").exists(), name


@pytest.mark.parametrize("template", EMAIL_TEMPLATES)
def test_every_email_names_the_sender_the_mailing_address_and_a_contact(
    identified, make, runner, smtp, template
):
    insights = make.list("market-insights", name="Market Insights")
    contact = make.contact("pat@example.com", "Pat")
    subscription = make.subscription(contact, insights, state="invited", basis="none")
    mailer.queue(
        template,
        contact.primary_email,
        f"The {template} email",
        template,
        contact=contact,
        mailing_list=insights,
        mailing_list_=insights,
        subscription=subscription,
        approve_url="https://prefs.example.test/approve",
        confirm_url="https://prefs.example.test/confirm",
        verify_url="https://prefs.example.test/verify",
        link=tokens.manage_url(contact),
        masked="p***@example.com",
        hours=24,
        changes=["Market Insights: off"],
    )
    db.session.commit()

    assert "1 sent" in runner.invoke(args=["send-mail"]).output
    [received] = smtp.messages
    text, html = received.text(), received.html()
    assert "Sent by Robin Quay, Quay &amp; Co" in html and "Sent by Robin Quay, Quay & Co" in text
    for part in (text, html.replace("&amp;", "&")):
        assert ADDRESS in part
        assert f"Contact: {CONTACT}" in part


def test_public_pages_name_the_sender_address_and_contact(identified, client, make):
    insights = make.list("market-insights", name="Market Insights")
    contact = make.contact("pat@example.com")
    make.subscription(contact, insights)
    pages = {
        "preferences": "/p/" + tokens.sign(tokens.MANAGE, contact),
        "one-click": tokens.unsubscribe_url(contact, "market-insights").split(
            "prefs.example.test", 1
        )[1],
        "fresh link": "/p",
    }
    for name, path in pages.items():
        page = client.get(path).get_data(as_text=True)
        assert "<footer" in page, name
        footer = page.split("<footer", 1)[1]
        assert "Quay &amp; Co" in footer and ADDRESS in footer, name
        assert f"Contact: {CONTACT}" in footer, name


def test_check_identification_warns_when_unset(app, runner):
    app.config.update(ORGANISATION_NAME="Acme", ORGANISATION_ADDRESS="", ORGANISATION_CONTACT="")

    result = runner.invoke(args=["check-identification"])

    assert result.exit_code == 0
    assert "WARNING: ORGANISATION_ADDRESS and ORGANISATION_CONTACT not set" in result.output


def test_the_demo_organisation_has_its_own_address(monkeypatch, tmp_path):
    from preference_center import config

    monkeypatch.delenv("ORGANISATION_NAME", raising=False)
    monkeypatch.delenv("ORGANISATION_ADDRESS", raising=False)
    monkeypatch.delenv("ORGANISATION_CONTACT", raising=False)
    demo = config.from_environment(str(tmp_path))
    assert demo["ORGANISATION_ADDRESS"] == config.DEMO_ADDRESS
    assert config.missing_identification(demo) == []

    monkeypatch.setenv("ORGANISATION_NAME", "Acme")
    own = config.from_environment(str(tmp_path))
    assert config.missing_identification(own) == ["ORGANISATION_ADDRESS", "ORGANISATION_CONTACT"]
