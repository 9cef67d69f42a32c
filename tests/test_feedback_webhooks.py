"""POST /feedback/sendgrid, /mailgun, /postmark with real signatures made here."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from feedback_helpers import address, feedback_events, provider_events, state_of
from helpers import all_events, csrf_token

from preference_center import may_send

SG_SIG = "X-Twilio-Email-Event-Webhook-Signature"
SG_TS = "X-Twilio-Email-Event-Webhook-Timestamp"
MAILGUN_KEY = "key-" + "m" * 32


@pytest.fixture
def lists(app, make):
    insights = make.list("market-insights")
    offers = make.list("offers-events")
    notes = make.list("personal-notes", audience="personal")
    pat = make.contact("pat@example.com")
    for mailing_list in (insights, offers, notes):
        make.subscription(pat, mailing_list)
    return pat, insights, offers, notes


# --- SendGrid ----------------------------------------------------------------


@pytest.fixture
def sendgrid_key(app):
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    app.config["SENDGRID_WEBHOOK_PUBLIC_KEY"] = base64.b64encode(der).decode()
    return private


def sendgrid_post(client, key, events, *, timestamp=None, body=None, signature=None):
    body = body if body is not None else json.dumps(events).encode()
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    if signature is None:
        der = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        signature = base64.b64encode(der).decode()
    headers = {SG_SIG: signature, SG_TS: timestamp, "Content-Type": "application/json"}
    return client.post("/feedback/sendgrid", data=body, headers=headers)


def sg_event(event, email="pat@example.com", **extra):
    return {"email": email, "event": event, "timestamp": int(time.time()),
            "sg_event_id": secrets.token_hex(8), "sg_message_id": "m1", **extra}  # fmt: skip


def test_sendgrid_spam_report_withdraws_the_named_list(lists, client, sendgrid_key):
    pat, insights, offers, notes = lists
    event = sg_event("spamreport", pc_list="market-insights")
    response = sendgrid_post(client, sendgrid_key, [event, sg_event("open"), sg_event("click")])
    assert response.status_code == 200
    assert response.get_json() == {"received": 1}
    assert state_of(pat, insights) == "unsubscribed"
    assert state_of(pat, offers) == "subscribed"
    [logged] = feedback_events(pat)
    assert (logged.actor, logged.action, logged.to_state) == (
        "sendgrid",
        "withdraw",
        "unsubscribed",
    )
    assert json.loads(logged.detail) == {
        "provider": "sendgrid", "event": "spamreport", "id": event["sg_event_id"],
    }  # fmt: skip
    # The same event again (SendGrid retries): nothing more in the log.
    again = sendgrid_post(client, sendgrid_key, [event])
    assert again.status_code == 200
    assert len(feedback_events(pat)) == 1


def test_sendgrid_unsubscribe_without_a_list_withdraws_every_business_list(
    lists, client, sendgrid_key
):
    pat, insights, offers, notes = lists
    assert sendgrid_post(client, sendgrid_key, [sg_event("unsubscribe")]).status_code == 200
    assert state_of(pat, insights) == state_of(pat, offers) == "unsubscribed"
    assert state_of(pat, notes) == "subscribed"  # personal lists stay


def test_sendgrid_hard_bounce_makes_the_address_undeliverable(lists, client, sendgrid_key):
    pat, insights, offers, notes = lists
    bounce = sg_event("bounce", type="bounce", reason="550 5.1.1 unknown user")
    assert sendgrid_post(client, sendgrid_key, [bounce]).status_code == 200
    answer = may_send.check("pat@example.com", "personal-notes")
    assert (answer.allowed, answer.status) == (False, "undeliverable")
    assert state_of(pat, notes) == "subscribed"  # the mailbox failed, nobody withdrew
    [logged] = feedback_events(pat)
    assert logged.action == "undeliverable"


def test_sendgrid_refuses_wrong_signatures_and_stale_timestamps(lists, client, sendgrid_key):
    pat = lists[0]
    event = [sg_event("spamreport")]
    other = ec.generate_private_key(ec.SECP256R1())
    assert sendgrid_post(client, other, event).status_code == 403
    body = json.dumps(event).encode()
    good = sendgrid_key.sign(b"123" + body, ec.ECDSA(hashes.SHA256()))
    tampered = sendgrid_post(
        client, sendgrid_key, None, body=body.replace(b"pat", b"sam"),
        signature=base64.b64encode(good).decode(), timestamp=123,
    )  # fmt: skip
    assert tampered.status_code == 403
    stale = sendgrid_post(client, sendgrid_key, event, timestamp=int(time.time()) - 3600)
    assert stale.status_code == 403
    assert stale.get_json()["error"]["code"] == "stale"
    garbage = sendgrid_post(client, sendgrid_key, event, signature="not base64!")
    assert garbage.status_code == 403
    unsigned = client.post("/feedback/sendgrid", json=event)
    assert unsigned.status_code == 401
    assert feedback_events(pat) == [] and provider_events() == []


def test_sendgrid_malformed_oversized_and_unknown(lists, client, sendgrid_key, app):
    pat = lists[0]
    for body in (
        b"not json",
        b'{"event": "spamreport"}',
        b"[1, 2]",
        b'[{"email": "x"}]',
        json.dumps([{"event": "spamreport", "email": "pat@example.com"}]).encode(),
    ):
        response = sendgrid_post(client, sendgrid_key, None, body=body)
        assert response.status_code == 400, body
        assert response.is_json
    app.config["FEEDBACK_MAX_CONTENT_LENGTH"] = 1000
    big = [sg_event("open", note="x" * 2000)]
    assert sendgrid_post(client, sendgrid_key, big).status_code == 413
    app.config["FEEDBACK_MAX_CONTENT_LENGTH"] = 1024 * 1024
    known = sendgrid_post(client, sendgrid_key, [sg_event("spamreport")])
    unknown = sendgrid_post(client, sendgrid_key, [sg_event("spamreport", "who@example.com")])
    assert (known.status_code, known.get_json()) == (unknown.status_code, unknown.get_json())
    assert len(feedback_events(pat)) == 2  # two business lists withdrawn, nothing for "who"


def test_an_unconfigured_provider_is_not_there(lists, client):
    before = len(all_events())
    for path in ("/feedback/sendgrid", "/feedback/mailgun", "/feedback/postmark"):
        response = client.post(path, json=[sg_event("spamreport")])
        assert response.status_code == 404, path
    assert len(all_events()) == before
    assert provider_events() == []


# --- Mailgun -----------------------------------------------------------------


@pytest.fixture
def mailgun_key(app):
    app.config["MAILGUN_WEBHOOK_SIGNING_KEY"] = MAILGUN_KEY
    return MAILGUN_KEY


def mailgun_body(event_data, *, key=MAILGUN_KEY, timestamp=None):
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    token = secrets.token_hex(25)
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {"signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": event_data}  # fmt: skip


def mg_event(event, recipient="pat@example.com", **extra):
    return {"event": event, "id": secrets.token_hex(8), "timestamp": time.time(),
            "recipient": recipient, **extra}  # fmt: skip


def test_mailgun_complaint_and_bounces(lists, client, mailgun_key, app):
    pat, insights, offers, notes = lists
    complaint = mailgun_body(
        mg_event("complained", **{"user-variables": {"pc_list": "offers-events"}})
    )
    assert client.post("/feedback/mailgun", json=complaint).status_code == 200
    assert client.post("/feedback/mailgun", json=complaint).status_code == 200  # again
    assert state_of(pat, offers) == "unsubscribed"
    assert state_of(pat, insights) == "subscribed"
    assert len(feedback_events(pat)) == 1
    app.config["SOFT_BOUNCE_LIMIT"] = 3
    for _ in range(2):
        soft = mailgun_body(mg_event("failed", severity="temporary"))
        assert client.post("/feedback/mailgun", json=soft).status_code == 200
    assert address("pat@example.com").soft_bounces == 2
    delivered = mailgun_body(mg_event("delivered"))
    assert client.post("/feedback/mailgun", json=delivered).status_code == 200
    assert address("pat@example.com").soft_bounces == 0  # the run was broken
    for _ in range(3):
        soft = mailgun_body(mg_event("failed", severity="temporary"))
        client.post("/feedback/mailgun", json=soft)
    assert address("pat@example.com").undeliverable_since is not None
    assert may_send.check("pat@example.com", "market-insights").status == "undeliverable"


def test_mailgun_refuses_wrong_signatures_and_stale_timestamps(lists, client, mailgun_key):
    pat = lists[0]
    wrong = mailgun_body(mg_event("complained"), key="another key")
    assert client.post("/feedback/mailgun", json=wrong).status_code == 403
    stale = mailgun_body(mg_event("complained"), timestamp=int(time.time()) - 600)
    assert client.post("/feedback/mailgun", json=stale).status_code == 403
    unsigned = {"event-data": mg_event("complained")}
    assert client.post("/feedback/mailgun", json=unsigned).status_code == 401
    for body in (
        b"{",
        b"[]",
        json.dumps(mailgun_body("nope")).encode(),
        json.dumps(mailgun_body({"event": "complained"})).encode(),
    ):
        response = client.post("/feedback/mailgun", data=body, content_type="application/json")
        assert response.status_code == 400, body
    assert feedback_events(pat) == []
    unknown = mailgun_body(mg_event("complained", "who@example.com"))
    assert client.post("/feedback/mailgun", json=unknown).get_json() == {"received": 1}


# --- Postmark ----------------------------------------------------------------


@pytest.fixture
def postmark_auth(app):
    app.config["POSTMARK_WEBHOOK_USER"] = "postmark"
    app.config["POSTMARK_WEBHOOK_PASSWORD"] = "s3cret-pass"
    token = base64.b64encode(b"postmark:s3cret-pass").decode()
    return {"Authorization": f"Basic {token}"}


def test_postmark_spam_complaint_bounce_and_subscription_change(lists, client, postmark_auth):
    pat, insights, offers, notes = lists
    spam = {"RecordType": "SpamComplaint", "Type": "SpamComplaint", "ID": 42,
            "Email": "pat@example.com", "BouncedAt": "2026-01-01T10:00:00Z",
            "Metadata": {"pc_list": "market-insights"}}  # fmt: skip
    assert client.post("/feedback/postmark", json=spam, headers=postmark_auth).status_code == 200
    assert client.post("/feedback/postmark", json=spam, headers=postmark_auth).status_code == 200
    assert state_of(pat, insights) == "unsubscribed"
    assert len(feedback_events(pat)) == 1
    change = {"RecordType": "SubscriptionChange", "Recipient": "pat@example.com",
              "ChangedAt": "2026-01-02T10:00:00Z", "Origin": "Recipient",
              "SuppressSending": True, "SuppressionReason": "ManualSuppression",
              "MessageStream": "broadcast", "Metadata": {}}  # fmt: skip
    assert client.post("/feedback/postmark", json=change, headers=postmark_auth).status_code == 200
    assert state_of(pat, offers) == "unsubscribed"
    assert state_of(pat, notes) == "subscribed"
    bounce = {"RecordType": "Bounce", "ID": 43, "Type": "HardBounce", "TypeCode": 1,
              "Email": "pat@example.com", "BouncedAt": "2026-01-03T10:00:00Z"}  # fmt: skip
    assert client.post("/feedback/postmark", json=bounce, headers=postmark_auth).status_code == 200
    assert may_send.check("pat@example.com", "personal-notes").status == "undeliverable"


def test_postmark_refuses_wrong_credentials_and_malformed_bodies(lists, client, postmark_auth):
    pat = lists[0]
    spam = {"RecordType": "SpamComplaint", "ID": 1, "Email": "pat@example.com"}
    wrong = {"Authorization": "Basic " + base64.b64encode(b"postmark:guess").decode()}
    for headers in ({}, wrong, {"Authorization": "Bearer s3cret-pass"}):
        response = client.post("/feedback/postmark", json=spam, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    for body in (b"nope", b"[]", b'{"ID": 1}', b'{"RecordType": "SpamComplaint", "ID": 2}'):
        response = client.post(
            "/feedback/postmark", data=body, headers=postmark_auth, content_type="application/json"
        )
        assert response.status_code == 400, body
    assert feedback_events(pat) == []


def test_a_new_confirmation_clears_undeliverable(lists, client, postmark_auth, manage_path):
    pat, insights, offers, notes = lists
    bounce = {"RecordType": "Bounce", "ID": 7, "Type": "HardBounce",
              "Email": "pat@example.com", "Metadata": {}}  # fmt: skip
    client.post("/feedback/postmark", json=bounce, headers=postmark_auth)
    page = client.get(manage_path(pat)).get_data(as_text=True)
    assert "bounced on" in page
    # The contact chooses a list again and confirms from the email.
    from preference_center import consent, tokens
    from preference_center.consent import Via

    subscription = consent.find_subscription(pat, insights)
    consent.withdraw(subscription, Via("preference_page", "contact"))
    consent.opt_in(pat, insights, Via("preference_page", "contact"), evidence="again")
    from preference_center.extensions import db

    db.session.commit()
    token = tokens.sign(tokens.CONFIRM, pat, l="market-insights")
    confirm_page = client.get(f"/confirm/{token}")
    assert confirm_page.status_code == 200
    confirmed = client.post(
        f"/confirm/{token}", data={"csrf_token": csrf_token(confirm_page.get_data(as_text=True))}
    )
    assert confirmed.status_code in (200, 303)
    assert address("pat@example.com").undeliverable_since is None
    assert may_send.check("pat@example.com", "market-insights").allowed
    assert "bounced on" not in client.get(manage_path(pat)).get_data(as_text=True)
