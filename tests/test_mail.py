"""Mail as the SMTP server receives it: invitations, confirmations, the outbox's retries."""

from __future__ import annotations

import re
import socket
import time
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest
from helpers import csrf_token

from preference_center import consent, mailer, suppression, tokens
from preference_center.consent import Via
from preference_center.extensions import db, mail
from preference_center.models import OutboxMessage, Subscription, utcnow

PAGE = Via(channel="preference_page", actor="contact")
BASE = "https://prefs.example.test"


# --- reading the raw bytes --------------------------------------------------------


def header_fields(raw: bytes) -> list[bytes]:
    """The top-level header fields exactly as sent, continuation lines kept."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    fields: list[bytes] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    return fields


def raw_header(raw: bytes, name: str) -> list[bytes]:
    prefix = name.lower().encode() + b":"
    return [f for f in header_fields(raw) if f.lower().startswith(prefix)]


def assert_one_click_headers(raw: bytes, contact, slug: str) -> None:
    """RFC 8058 as a mail provider reads it: one header, one https URI in brackets."""
    [unsubscribe] = raw_header(raw, "List-Unsubscribe")
    assert b"\r\n" not in unsubscribe, "folded List-Unsubscribe"
    assert b"=?" not in unsubscribe, "RFC 2047-encoded List-Unsubscribe"
    match = re.fullmatch(
        rb"List-Unsubscribe: <(https://prefs\.example\.test/u/([^<>\s,]+))>", unsubscribe
    )
    assert match, unsubscribe
    claims = tokens.verify(tokens.UNSUBSCRIBE, match.group(2).decode())
    assert claims.contact.id == contact.id
    assert claims.scope == {"l": slug}
    assert raw_header(raw, "List-Unsubscribe-Post") == [
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    ]


def assert_well_formed(raw: bytes) -> None:
    for name in ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version"):
        assert len(raw_header(raw, name)) == 1, name
    body = raw.split(b"\r\n\r\n", 1)[1]
    # Quoted-printable keeps every body line within RFC 2045's 76 characters.
    assert max(len(line) for line in body.split(b"\r\n")) <= 76


def manage_links(text: str, contact) -> list[str]:
    links = re.findall(re.escape(BASE) + r"/p/([A-Za-z0-9._-]+)", text)
    assert links, "no manage link"
    assert {tokens.verify(tokens.MANAGE, token).contact.id for token in links} == {contact.id}
    return links


def outbox() -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.execute(db.select(OutboxMessage).order_by(OutboxMessage.id)).scalars())


# --- invitations ---------------------------------------------------------------------


@pytest.fixture
def insights(make):
    return make.list(
        "market-insights",
        name="Market Insights",
        description="Harbor Financial's view of the markets, with charts.",
        frequency="Monthly",
    )


def invite(make, mailing_list, email: str, name: str | None = None) -> Subscription:
    # In the US an emailed invitation is lawful (CAN-SPAM); elsewhere see test_law.py.
    contact = make.contact(email, name, jurisdiction="US")
    return make.subscription(
        contact,
        mailing_list,
        state="invited",
        basis="none",
        source="networking import",
        evidence="Connected on LinkedIn on 15 Feb 2011",
    )


def test_the_invitation_as_received(runner, make, smtp, insights):
    subscription = invite(make, insights, "zoe@example.org", "Zoë Núñez")
    contact = subscription.contact

    result = runner.invoke(args=["send-invitations", "--list", "market-insights"])
    assert "1 invitation(s) queued for Market Insights" in result.output
    result = runner.invoke(args=["send-mail"])
    assert "1 sent, 0 postponed." in result.output

    [received] = smtp.messages
    assert received.rcpt_tos == ["zoe@example.org"]
    raw = received.raw
    assert_well_formed(raw)
    assert_one_click_headers(raw, contact, "market-insights")
    message = received.message
    assert message["Subject"] == "May Dana Reyes send you Market Insights?"
    assert message["From"] == "Dana Reyes <dana@harbor.example>"
    assert parsedate_to_datetime(message["Date"]).tzinfo is not None
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]

    text = received.text()
    assert "Hello Zoë Núñez," in text
    assert "Dana Reyes at Harbor Financial would like to send you" in text
    assert "Harbor Financial's view of the markets, with charts. (Monthly)" in text
    [yes] = re.findall(r"Yes, send me this: (\S+)", text)
    # The one-button yes (issue 14): its own signed link, not the manage link.
    assert yes.startswith(f"{BASE}/yes/")
    assert "If you do nothing, nothing more arrives: this is the only time we ask." in text
    assert "Saying no changes nothing between you and Dana Reyes personally." in text
    manage_links(text, contact)

    html = received.html()
    yes_link = r'<a href="https://prefs\.example\.test/yes/[^"]+">Yes, send me this</a>'
    assert re.search(yes_link, html)
    assert "If you do nothing, nothing more arrives" in html
    assert "Saying no changes nothing between you and Dana Reyes personally." in html
    manage_links(html, contact)

    db.session.expire_all()
    assert subscription.invited_at is not None
    assert subscription.state == "invited"


def test_invitations_go_once_and_only_to_those_still_invited(runner, make, smtp, insights):
    first = invite(make, insights, "first@example.com")
    invite(make, insights, "second@example.com")
    make.subscription(make.contact("subscribed@example.com"), insights)
    withdrew = invite(make, insights, "withdrew@example.com")
    consent.withdraw(withdrew, PAGE)
    erased = invite(make, insights, "erased@example.com")
    suppression.suppress("erased@example.com")
    db.session.commit()

    result = runner.invoke(args=["send-invitations", "--list", "market-insights"])
    assert "2 invitation(s) queued" in result.output
    again = runner.invoke(args=["send-invitations", "--list", "market-insights"])
    assert "0 invitation(s) queued" in again.output
    mailer.deliver_due()

    assert sorted(r for m in smtp.messages for r in m.rcpt_tos) == [
        "first@example.com",
        "second@example.com",
    ]
    # A third invitee later gets theirs; the first one never gets a reminder.
    invite(make, insights, "third@example.com")
    runner.invoke(args=["send-invitations", "--list", "market-insights"])
    mailer.deliver_due()
    assert [r for m in smtp.messages for r in m.rcpt_tos].count("first@example.com") == 1
    assert [m.to_email for m in outbox()][-1] == "third@example.com"
    db.session.expire_all()
    assert erased.invited_at is None
    assert first.invited_at is not None


def test_send_invitations_for_an_unknown_list_says_so(runner, app):
    result = runner.invoke(args=["send-invitations", "--list", "nope"])

    assert result.exit_code == 1
    assert "There is no list 'nope'." in result.output


# --- confirmation -------------------------------------------------------------------


def test_the_confirmation_email_as_received(client, make, smtp, insights, manage_path):
    contact = make.contact("pat@example.com", "Pat")
    page = client.get(manage_path(contact))
    response = client.post(
        f"{manage_path(contact)}/lists/market-insights",
        data={"csrf_token": csrf_token(page.text), "subscribed": "yes"},
    )
    assert response.status_code == 303

    assert mailer.deliver_due() == (1, 0)

    [received] = smtp.messages
    assert received.rcpt_tos == ["pat@example.com"]
    assert_well_formed(received.raw)
    assert_one_click_headers(received.raw, contact, "market-insights")
    assert received.message["Subject"] == "Please confirm: Market Insights"
    text, html = received.text(), received.html()
    [confirm_url] = re.findall(re.escape(BASE) + r"/confirm/\S+", text)
    assert tokens.verify(tokens.CONFIRM, confirm_url.rsplit("/", 1)[1]).scope == {
        "l": "market-insights"
    }
    assert f'<a href="{confirm_url}">Confirm Market Insights</a>' in html
    assert "If you did not ask for this, ignore this email: nothing will be sent." in text
    manage_links(text, contact)
    manage_links(html, contact)


# --- the outbox -----------------------------------------------------------------------


def test_mail_waits_out_an_smtp_outage_and_goes_exactly_once(make, smtp_server, insights):
    sink, controller = smtp_server
    sink.messages.clear()
    contact = make.contact("pat@example.com")
    controller.stop()
    try:
        consent.opt_in(contact, insights, PAGE, evidence="ticked")
        db.session.commit()

        assert mailer.deliver_due() == (0, 1)
        [row] = outbox()
        assert (row.sent_at, row.attempts) == (None, 1)
        assert row.last_error
        assert row.next_attempt_at >= utcnow() + timedelta(seconds=10)
        # Not due yet: the backoff holds even though the server is back.
        controller.start()
        assert mailer.deliver_due() == (0, 0)
    finally:
        if controller._thread is None:
            controller.start()

    row.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert mailer.deliver_due() == (1, 0)
    assert mailer.deliver_due() == (0, 0)

    assert len(sink.messages) == 1
    assert sink.messages[0].rcpt_tos == ["pat@example.com"]
    [row] = outbox()
    assert row.sent_at is not None and row.attempts == 2


def test_backoff_grows_with_each_failed_attempt(make, smtp_server, insights):
    _sink, controller = smtp_server
    contact = make.contact("pat@example.com")
    consent.opt_in(contact, insights, PAGE, evidence="ticked")
    db.session.commit()
    delays = []
    controller.stop()
    try:
        for _ in range(3):
            before = utcnow()
            assert mailer.deliver_due() == (0, 1)
            [row] = outbox()
            delays.append((row.next_attempt_at - before).total_seconds())
            row.next_attempt_at = utcnow()
            db.session.commit()
    finally:
        controller.start()

    assert delays[0] < delays[1] < delays[2]


def test_mail_queued_in_a_transaction_that_rolls_back_is_never_sent(make, smtp, insights):
    contact = make.contact("pat@example.com")

    consent.opt_in(contact, insights, PAGE, evidence="ticked")
    db.session.flush()
    assert len(db.session.execute(db.select(OutboxMessage)).scalars().all()) == 1
    db.session.rollback()

    assert mailer.deliver_due() == (0, 0)
    assert outbox() == []
    assert smtp.messages == []


def test_a_refused_recipient_fails_for_good_and_the_rest_still_go(make, smtp, insights):
    for email in ("refused@example.com", "pat@example.com"):
        consent.opt_in(make.contact(email), insights, PAGE, evidence="ticked")
    db.session.commit()

    assert mailer.deliver_due() == (1, 1)

    assert [m.rcpt_tos for m in smtp.messages] == [["pat@example.com"]]
    refused, delivered = outbox()
    # A 550 is the server's final word: no retry (issue 17, #8).
    assert (refused.sent_at, refused.attempts) == (None, 1)
    assert refused.failed_at is not None and "550" in refused.last_error
    assert delivered.sent_at is not None
    assert mailer.deliver_due() == (0, 0)


def test_a_server_that_never_answers_times_out(app, make, insights):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # the kernel accepts; nobody ever greets
    try:
        app.config.update(MAIL_PORT=silent.getsockname()[1], MAIL_TIMEOUT=1)
        mail.init_app(app)
        consent.opt_in(make.contact("pat@example.com"), insights, PAGE, evidence="ticked")
        db.session.commit()
        started = time.monotonic()

        assert mailer.deliver_due() == (0, 1)

        assert time.monotonic() - started < 10
        [row] = outbox()
        assert "timed out" in row.last_error
    finally:
        silent.close()
