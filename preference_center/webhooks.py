"""Webhooks: every consent event POSTed, signed, in log order, never skipped.

Delivery follows the log. Each webhook remembers the id of the last event it
got; a worker claims a due webhook (``FOR UPDATE SKIP LOCKED`` on PostgreSQL),
leases it for a while, sends the next events one by one and records how far
it got. A failure stops at that event and backs off; the next attempt starts
from the same event, so nothing is lost or reordered. A worker that dies
mid-batch loses its lease and another resends from the last recorded event:
delivery is at least once, and receivers drop repeats by the event ``id``.

Signature: ``X-PC-Signature: sha256=<hex>`` where hex is
HMAC-SHA256(secret, f"{X-PC-Timestamp}.{raw body}").
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app

from . import feed
from .extensions import db
from .models import ConsentEvent, Webhook, utcnow

log = logging.getLogger(__name__)

BATCH_SIZE = 50
DEFAULT_TIMEOUT = 5.0
MAX_BACKOFF = timedelta(hours=1)
# Longer than a batch can take (BATCH_SIZE × timeout), so two workers never overlap.
LEASE = timedelta(minutes=5)


class WebhookError(ValueError):
    """A webhook that cannot be added or found as asked."""


class DeliveryFailed(Exception):
    """The receiver did not take the event (any answer but 2xx)."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-PC-Signature value for ``body`` sent at ``timestamp``."""
    message = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def add(url: str, secret: str | None = None, *, description: str = "", from_now: bool = False):
    """Register a receiver; returns (webhook, secret). Without a secret one is made up."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise WebhookError(f"{url!r} is not an http(s) URL.")
    if len(url) > 2000:
        raise WebhookError("The URL is longer than 2000 characters.")
    secret = secret or secrets.token_urlsafe(32)
    if len(secret) < 16:
        raise WebhookError("Use a secret of at least 16 characters.")
    start = 0
    if from_now:
        start = db.session.execute(db.select(db.func.max(ConsentEvent.id))).scalar() or 0
    webhook = Webhook(url=url, secret=secret, description=description, last_event_id=start)
    db.session.add(webhook)
    return webhook, secret


def remove(webhook_id: int) -> Webhook:
    webhook = db.session.get(Webhook, webhook_id)
    if webhook is None:
        raise WebhookError(f"No webhook has the id {webhook_id}.")
    db.session.delete(webhook)
    return webhook


def all_webhooks() -> list[Webhook]:
    return list(db.session.execute(db.select(Webhook).order_by(Webhook.id)).scalars())


@dataclass
class Outcome:
    delivered: int = 0
    failed: int = 0


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is a failure: the receiver's URL should be the final one."""

    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post(webhook_url: str, secret: str, event: dict, timeout: float) -> None:
    """POST one event; raises on anything but a 2xx answer."""
    body = json.dumps(event, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        webhook_url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "preference-center-webhooks/1",
            "X-PC-Event-Id": str(event["id"]),
            "X-PC-Timestamp": timestamp,
            "X-PC-Signature": sign(secret, timestamp, body),
        },
    )
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(1024)
    except urllib.error.HTTPError as error:
        error.close()  # it holds the open response
        raise DeliveryFailed(f"the receiver answered HTTP {error.code}") from None


def _claim(now: datetime, served: set[int]) -> tuple[int, str, str, int, list[dict]] | None:
    """Lease one due webhook and read its next events, in one short transaction."""
    webhook = db.session.execute(
        db.select(Webhook)
        .where(
            Webhook.disabled_at.is_(None),
            Webhook.next_attempt_at <= now,
            Webhook.id.not_in(list(served)),
        )
        .order_by(Webhook.next_attempt_at, Webhook.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).scalar_one_or_none()
    if webhook is None:
        db.session.rollback()
        return None
    events = [feed.as_dict(row) for row in feed.events_after(webhook.last_event_id, BATCH_SIZE)]
    # No HTTP call happens inside a transaction: the lease keeps other workers away.
    seconds = current_app.config.get("WEBHOOK_LEASE_SECONDS")
    lease = timedelta(seconds=seconds) if seconds else LEASE
    webhook.next_attempt_at = now + (lease if events else timedelta(seconds=0))
    claim = (webhook.id, webhook.url, webhook.secret, webhook.attempts, events)
    db.session.commit()
    return claim


def deliver_due(now: datetime | None = None, timeout: float | None = None) -> Outcome:
    """Deliver pending events to every due webhook, one batch each; returns the counts."""
    timeout = timeout or current_app.config.get("WEBHOOK_TIMEOUT", DEFAULT_TIMEOUT)
    outcome = Outcome()
    served: set[int] = set()  # one batch per webhook per round
    while True:
        claim = _claim(now or utcnow(), served)
        if claim is None:
            return outcome
        webhook_id, url, secret, attempts, events = claim
        served.add(webhook_id)
        if not events:
            continue
        last_id, error = None, None
        for event in events:
            try:
                post(url, secret, event, timeout)
            except (DeliveryFailed, OSError, http.client.HTTPException, ValueError) as exc:
                error = exc
                break
            last_id = event["id"]
            outcome.delivered += 1
        _record(webhook_id, last_id, attempts, error, now)
        if error is not None:
            outcome.failed += 1


def _record(
    webhook_id: int, last_id: int | None, attempts: int, error: Exception | None, now
) -> None:
    """Write how far delivery got, and when to try again."""
    webhook = db.session.get(Webhook, webhook_id, populate_existing=True)
    if webhook is None:  # removed meanwhile
        db.session.rollback()
        return
    moment = now or utcnow()
    if last_id is not None:
        webhook.last_event_id = max(webhook.last_event_id, last_id)
        webhook.last_delivered_at = moment
    if error is None:
        webhook.attempts = 0
        webhook.last_error = None
        webhook.next_attempt_at = moment
    else:
        webhook.attempts = attempts + 1 if last_id is None else 1
        delay = min(timedelta(seconds=15 * 2 ** (webhook.attempts - 1)), MAX_BACKOFF)
        webhook.next_attempt_at = moment + delay
        webhook.last_error = f"{type(error).__name__}: {error}"[:1000]
        log.warning("webhook %s: delivery postponed: %s", webhook_id, webhook.last_error)
    db.session.commit()
