"""DKIM: every message leaves signed over the exact bytes sent, h= covering the list headers.

The key is made in the test (cryptography), the message goes through the real
SMTP test server, and dkimpy verifies what arrived against the public key
served by a ``dnsfunc`` that answers with the TXT record ``dkim-record`` prints.
"""

from __future__ import annotations

import re

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from preference_center import invitations, mailer
from preference_center.extensions import db
from preference_center.models import OutboxMessage, Subscription

SELECTOR, DOMAIN = "pc2026", "harbor.example"


def write_key(tmp_path, traditional: bool = True):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL
        if traditional
        else serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = tmp_path / "dkim.pem"
    path.write_bytes(pem)
    return key, path


@pytest.fixture
def signing(app, tmp_path):
    key, path = write_key(tmp_path)
    app.config.update(DKIM_PRIVATE_KEY_FILE=str(path), DKIM_SELECTOR=SELECTOR, DKIM_DOMAIN=DOMAIN)
    return key


def txt_record(key) -> bytes:
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import base64

    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def dns_for(key):
    def dnsfunc(name, timeout=5):
        assert name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode(), name
        return txt_record(key)

    return dnsfunc


def confirmation_sent(make, runner, smtp):
    insights = make.list("market-insights", name="Market Insights")
    contact = make.contact("pat@example.com", jurisdiction="US")
    subscription = make.subscription(contact, insights, state="invited", basis="none")
    subscription = db.session.get(Subscription, subscription.id)
    invitations.queue_invitation(subscription)
    db.session.commit()
    result = runner.invoke(args=["send-mail"])
    assert "1 sent, 0 postponed." in result.output, result.output
    [received] = smtp.messages
    return received


def signed_headers(raw: bytes) -> list[str]:
    header = raw.split(b"\r\n\r\n", 1)[0].decode()
    signature = re.search(r"^DKIM-Signature:(.*?)(?=^\S)", header + "\r\nX:", re.S | re.M).group(1)
    tags = dict(
        part.strip().split("=", 1) for part in re.sub(r"\s+", "", signature).split(";") if part
    )
    return tags, tags["h"].split(":")


def test_s8_item_7_a_sent_message_verifies_and_h_covers_the_list_headers(
    signing, make, runner, smtp
):
    """standards.md §8 item 7: the DKIM h= includes both list headers and dkim.verify()
    passes on the message as the SMTP server received it."""
    received = confirmation_sent(make, runner, smtp)
    raw = received.raw

    assert raw.startswith(b"DKIM-Signature:")
    assert dkim.verify(raw, dnsfunc=dns_for(signing))
    tags, headers = signed_headers(raw)
    assert tags["a"] == "rsa-sha256" and tags["c"] == "relaxed/relaxed"
    assert tags["d"] == DOMAIN and tags["s"] == SELECTOR
    assert headers == [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ]
    # The one-click header as signed is still one unfolded line with an https URI.
    assert re.search(rb"\r\nList-Unsubscribe: <https://[^>\r\n]+>\r\n", raw)


def test_a_changed_list_unsubscribe_header_breaks_the_signature(signing, make, runner, smtp):
    raw = confirmation_sent(make, runner, smtp).raw
    tampered = re.sub(rb"List-Unsubscribe: <https://", b"List-Unsubscribe: <https://evil.", raw)

    assert tampered != raw
    assert not dkim.verify(tampered, dnsfunc=dns_for(signing))


def test_a_pkcs8_key_signs_too(app, tmp_path, make, runner, smtp):
    key, path = write_key(tmp_path, traditional=False)
    app.config.update(DKIM_PRIVATE_KEY_FILE=str(path), DKIM_SELECTOR=SELECTOR, DKIM_DOMAIN=DOMAIN)

    raw = confirmation_sent(make, runner, smtp).raw

    assert dkim.verify(raw, dnsfunc=dns_for(key))


def test_unsigned_when_dkim_is_not_configured(make, runner, smtp):
    raw = confirmation_sent(make, runner, smtp).raw

    assert b"DKIM-Signature" not in raw


def test_half_configured_dkim_postpones_mail_with_a_clear_error(app, make, runner, smtp):
    app.config["DKIM_SELECTOR"] = SELECTOR
    insights = make.list("market-insights")
    contact = make.contact("pat@example.com")
    mailer.queue("test", contact.primary_email, "Hi", "fresh_link", contact=contact, link="x")
    db.session.commit()

    result = runner.invoke(args=["send-mail"])

    assert "0 sent, 1 postponed." in result.output
    assert smtp.messages == []
    [row] = db.session.execute(db.select(OutboxMessage)).scalars().all()
    db.session.refresh(row)
    assert "DKIM is half configured" in row.last_error and insights


def test_dkim_record_prints_the_txt_record_to_publish(signing, runner):
    result = runner.invoke(args=["dkim-record"])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        f'{SELECTOR}._domainkey.{DOMAIN}. IN TXT "{txt_record(signing).decode()}"'
    )


def test_dkim_record_says_when_dkim_is_off(runner):
    result = runner.invoke(args=["dkim-record"])

    assert result.exit_code != 0 and "DKIM is off" in result.output


def test_the_message_id_comes_from_the_outbox_row_and_is_the_same_on_every_retry(
    app, make, runner, smtp_server
):
    """PRODUCT.md "Mail": the Message-ID is derived from the outbox row, so a retry
    after a failure carries the same one (receivers de-duplicate on it)."""
    sink, controller = smtp_server
    sink.messages.clear()
    contact = make.contact("pat@example.com")
    row = mailer.queue("test", contact.primary_email, "Hi", "fresh_link", contact=contact, link="x")
    db.session.commit()
    expected = f"<outbox-{row.id}@harbor.example>"
    assert mailer.build_message(row)["Message-ID"] == expected
    assert mailer.build_message(row)["Message-ID"] == expected

    controller.stop()
    try:
        assert "0 sent, 1 postponed." in runner.invoke(args=["send-mail"]).output
    finally:
        controller.start()
    db.session.refresh(row)
    row.next_attempt_at = row.created_at
    db.session.commit()
    assert "1 sent, 0 postponed." in runner.invoke(args=["send-mail"]).output

    [received] = sink.messages
    assert received.message["Message-ID"] == expected
