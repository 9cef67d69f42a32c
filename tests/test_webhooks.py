"""Webhooks against a real HTTP receiver on loopback: down, then up; signed; in order; once."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import all_events
from plugins.mail import free_port

from preference_center import consent, webhooks
from preference_center.consent import Via
from preference_center.extensions import db
from preference_center.models import Webhook, utcnow

SECRET = "whsec-test-0123456789abcdef"
PAGE = Via(channel="preference_page", actor="contact")


@dataclass
class Receiver:
    """A real HTTP server that verifies signatures the way a receiver should."""

    port: int
    secret: str = SECRET
    fail_event_ids: set[int] = field(default_factory=set)
    received: list[dict] = field(default_factory=list)
    bad_signatures: int = 0
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/consent"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                timestamp = self.headers["X-PC-Timestamp"]
                expected = hmac.new(
                    receiver.secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
                ).hexdigest()
                signature = self.headers["X-PC-Signature"]
                if not hmac.compare_digest(signature, f"sha256={expected}"):
                    receiver.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                event = json.loads(body)
                if event["id"] in receiver.fail_event_ids:
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.received.append(event)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def receiver():
    receiver = Receiver(port=free_port())  # nothing listens there yet: the receiver is down
    yield receiver
    receiver.stop()


@pytest.fixture
def history(make):
    """Five events over two contacts."""
    insights = make.list("market-insights")
    notes = make.list("personal-notes", audience="personal")
    ana, ben = make.contact("ana@example.com"), make.contact("ben@example.com")
    make.subscription(ana, insights)
    make.subscription(ben, insights)
    make.subscription(ana, notes, basis="personal")
    make.subscription(ben, notes, basis="personal")
    consent.withdraw(consent.find_subscription(ana, insights), PAGE)
    db.session.commit()
    return all_events()


def webhook_row() -> Webhook:
    db.session.expire_all()
    return db.session.execute(db.select(Webhook)).scalar_one()


def test_events_wait_while_the_receiver_is_down_and_arrive_once_in_order(
    app, runner, receiver, history
):
    result = runner.invoke(args=["add-webhook", receiver.url, "--secret", SECRET])
    assert result.exit_code == 0, result.output

    outcome = webhooks.deliver_due(timeout=2)
    assert (outcome.delivered, outcome.failed) == (0, 1)
    row = webhook_row()
    assert row.last_event_id == 0 and row.attempts == 1
    assert row.next_attempt_at > utcnow() and "Connection refused" in row.last_error
    # Not due yet: a second run does not hammer the receiver.
    assert webhooks.deliver_due(timeout=2).failed == 0

    receiver.start()
    later = utcnow() + timedelta(minutes=1)
    outcome = webhooks.deliver_due(now=later, timeout=5)
    assert (outcome.delivered, outcome.failed) == (len(history), 0)
    assert [e["id"] for e in receiver.received] == [e.id for e in history]
    assert [e["hash"] for e in receiver.received] == [e.hash for e in history]
    assert receiver.bad_signatures == 0
    row = webhook_row()
    assert (row.last_event_id, row.attempts, row.last_error) == (history[-1].id, 0, None)

    # Once: nothing is sent again; a new event follows on the next run.
    assert webhooks.deliver_due(now=later, timeout=5).delivered == 0
    ana = history[0].contact
    consent.withdraw_everything(ana, PAGE)
    db.session.commit()
    assert webhooks.deliver_due(now=later, timeout=5).delivered == 1
    assert len(receiver.received) == len(history) + 1
    last = receiver.received[-1]
    assert (last["action"], last["channel"], last["contact"]) == (
        "withdraw",
        "preference_page",
        ana.public_id,
    )


def test_a_failure_stops_at_that_event_and_never_skips_it(app, receiver, history):
    receiver.start()
    webhooks.add(receiver.url, SECRET)
    db.session.commit()
    receiver.fail_event_ids = {history[2].id}

    outcome = webhooks.deliver_due(timeout=5)
    assert (outcome.delivered, outcome.failed) == (2, 1)
    assert [e["id"] for e in receiver.received] == [e.id for e in history[:2]]
    row = webhook_row()
    assert row.last_event_id == history[1].id and row.attempts == 1
    first_retry = row.next_attempt_at

    # Still failing: the wait grows.
    webhooks.deliver_due(now=first_retry, timeout=5)
    row = webhook_row()
    assert row.attempts == 2 and row.next_attempt_at - first_retry >= timedelta(seconds=30)

    receiver.fail_event_ids = set()
    webhooks.deliver_due(now=row.next_attempt_at, timeout=5)
    assert [e["id"] for e in receiver.received] == [e.id for e in history]
    assert webhook_row().attempts == 0


def test_a_wrong_secret_is_refused_by_the_receiver(app, receiver, history):
    receiver.start()
    webhooks.add(receiver.url, "some-other-secret-entirely")
    db.session.commit()
    outcome = webhooks.deliver_due(timeout=5)
    assert outcome.failed == 1 and receiver.received == []
    assert receiver.bad_signatures == 1
    assert webhook_row().last_event_id == 0


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = b'{"id":1}'
    expected = hmac.new(b"k" * 16, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert webhooks.sign("k" * 16, "1700000000", body) == f"sha256={expected}"


def test_webhook_cli_add_list_remove(runner, history):
    result = runner.invoke(args=["add-webhook", "ftp://example.com/x"])
    assert result.exit_code != 0 and "not an http(s) URL" in result.output
    result = runner.invoke(args=["add-webhook", "https://crm.example/hook", "--secret", "short"])
    assert result.exit_code != 0 and "at least 16" in result.output

    result = runner.invoke(args=["add-webhook", "https://crm.example/hook", "--from-now"])
    assert result.exit_code == 0 and "Signing secret (shown once)" in result.output
    secret = result.output.rsplit(" ", 1)[-1].strip()
    row = webhook_row()
    assert row.secret == secret and row.last_event_id == history[-1].id

    listing = runner.invoke(args=["list-webhooks"]).output
    assert "https://crm.example/hook" in listing and secret not in listing

    assert runner.invoke(args=["remove-webhook", str(row.id)]).exit_code == 0
    assert db.session.execute(db.select(Webhook)).first() is None
    assert runner.invoke(args=["remove-webhook", str(row.id)]).exit_code != 0


def test_deliver_webhooks_command(runner, receiver, history):
    receiver.start()
    runner.invoke(args=["add-webhook", receiver.url, "--secret", SECRET])
    result = runner.invoke(args=["deliver-webhooks"])
    assert result.exit_code == 0 and f"{len(history)} delivered" in result.output
    assert len(receiver.received) == len(history)
