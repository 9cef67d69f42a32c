"""The outbox: mail is queued in the transaction of the change that caused it
and delivered later by ``flask send-mail``, with retries and backoff.

A change that rolls back takes its queued mail with it; a message is marked
sent in the same transaction that claimed it, so it goes out once.
Messages are built with an SMTP policy (998-character lines, no RFC 2047
folding of the List-Unsubscribe URL) and quoted-printable bodies; Flask-Mail
holds the SMTP settings (server, port, TLS, login, suppression).
"""

from __future__ import annotations

import json
import logging
import smtplib
from collections.abc import Callable
from contextlib import ExitStack, suppress
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr

from flask import current_app, render_template

from . import dkim_signing, languages, tokens
from .extensions import db
from .models import Contact, MailingList, OutboxMessage, Subscription, utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=1)
BATCH_SIZE = 50
# A message that failed this many times is given up on (OUTBOX_MAX_ATTEMPTS).
MAX_ATTEMPTS = 12
# Headers: one line up to SMTP's 998, so List-Unsubscribe is never folded or encoded.
_POLICY = SMTP.clone(max_line_length=998)
# Bodies: quoted-printable lines within RFC 2045's 76 characters.
_BODY_POLICY = SMTP.clone(max_line_length=76)


def queue(
    kind: str,
    to_email: str,
    subject: str | Callable[[], str],
    template: str,
    *,
    contact: Contact | None = None,
    mailing_list: MailingList | None = None,
    headers: dict[str, str] | None = None,
    language: str | None = None,
    **context: object,
) -> OutboxMessage:
    """Render ``email/<template>.txt`` and ``.html`` and add them to the outbox.

    Subject and bodies are written in ``language``, else the contact's
    (``languages.of_contact``); a callable subject (``lambda: _(...)``) is called
    there, so it is translated into that language too.
    """
    if contact is not None:
        context.setdefault("manage_url", tokens.manage_url(contact))
    context.setdefault("organisation", current_app.config["ORGANISATION_NAME"])
    context.setdefault("sender_name", current_app.config["SENDER_NAME"])
    with languages.speaking(language or languages.of_contact(contact)):
        message = OutboxMessage(
            kind=kind,
            contact_id=contact.id if contact else None,
            list_id=mailing_list.id if mailing_list else None,
            to_email=to_email,
            subject=str(subject() if callable(subject) else subject),
            text_body=render_template(f"email/{template}.txt", **context),
            html_body=render_template(f"email/{template}.html", **context),
            headers_json=json.dumps(headers or {}),
        )
    db.session.add(message)
    return message


def list_headers(contact: Contact, mailing_list: MailingList) -> dict[str, str]:
    """RFC 2369 / RFC 8058 headers for mail about ``mailing_list``."""
    domain = current_app.config["PUBLIC_BASE_URL"].split("//", 1)[-1].split("/")[0]
    return {
        "List-Id": f"{mailing_list.name} <{mailing_list.slug}.{domain.split(':')[0]}>",
        "List-Unsubscribe": f"<{tokens.unsubscribe_url(contact, mailing_list.slug)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def queue_for(
    subscription: Subscription, kind: str, subject: str | Callable[[], str], /, **context: object
) -> OutboxMessage:
    """Queue mail about one subscription: to where its list goes, with the list's headers.

    ``email/<kind>.txt`` and ``.html`` get the list as ``mailing_list_``.
    """
    contact, mailing_list = subscription.contact, subscription.mailing_list
    return queue(
        kind,
        contact.deliver_to(mailing_list, subscription),
        subject,
        kind,
        contact=contact,
        mailing_list=mailing_list,
        headers=list_headers(contact, mailing_list),
        mailing_list_=mailing_list,
        **context,
    )


def build_message(outbox: OutboxMessage) -> EmailMessage:
    """The MIME message for one outbox row: text and HTML parts, extra headers."""
    sender = current_app.config["MAIL_DEFAULT_SENDER"]
    name, address = parseaddr(sender)
    # Bodies are encoded when added, under the body policy; the message is then
    # serialised under the header policy (the generator uses the top policy).
    message = EmailMessage(policy=_BODY_POLICY)
    message["From"] = formataddr((name, address)) if name else address
    message["To"] = outbox.to_email
    message["Subject"] = outbox.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id(outbox, address)
    for header, value in json.loads(outbox.headers_json).items():
        message[header] = value
    message.set_content(outbox.text_body, cte="quoted-printable")
    message.add_alternative(outbox.html_body, subtype="html", cte="quoted-printable")
    message.policy = _POLICY
    return message


def _due():
    """SQL: not sent, not given up on, and its time has come."""
    return (
        OutboxMessage.sent_at.is_(None),
        OutboxMessage.failed_at.is_(None),
        OutboxMessage.next_attempt_at <= utcnow(),
    )


def message_id(outbox: OutboxMessage, sender_address: str) -> str:
    """``<outbox-ID@sender-domain>``: derived from the row, so every retry carries the same one."""
    return f"<outbox-{outbox.id}@{sender_address.rsplit('@', 1)[-1]}>"


def signed_bytes(message: EmailMessage) -> bytes:
    """The exact bytes sent: serialised, then DKIM-signed when configured.

    Signing after serialisation signs what goes on the wire (the SMTP policy
    decides the folding), and the signature header is prepended to those bytes.
    """
    return dkim_signing.sign(message.as_bytes(), list(message.keys()))


def wire_bytes(outbox: OutboxMessage) -> bytes:
    """The exact bytes sent for one outbox row."""
    return signed_bytes(build_message(outbox))


def _claim_next() -> OutboxMessage | None:
    return db.session.execute(
        db.select(OutboxMessage)
        .where(*_due())
        .order_by(OutboxMessage.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).scalar_one_or_none()


def _due_exists() -> bool:
    """Is anything due? Asked, then the transaction ended, so nothing stays locked."""
    due = db.session.execute(db.select(OutboxMessage.id).where(*_due()).limit(1)).first()
    db.session.rollback()
    return due is not None


def _connect(stack: ExitStack) -> smtplib.SMTP:
    """An SMTP connection as Flask-Mail is configured, with a timeout.

    Flask-Mail's own connection has no timeout: a server that accepts and
    never answers would stall the worker for good.
    """
    state = current_app.extensions["mail"]
    if state.suppress:
        raise RuntimeError("MAIL_SUPPRESS_SEND is on: nothing can be delivered.")
    smtp_class = smtplib.SMTP_SSL if state.use_ssl else smtplib.SMTP
    timeout = current_app.config.get("MAIL_TIMEOUT", 30)
    host = smtp_class(state.server, state.port, timeout=timeout)
    stack.callback(_quit, host)
    if state.use_tls:
        host.starttls()
    if state.username and state.password:
        host.login(state.username, state.password)
    return host


def _quit(host: smtplib.SMTP) -> None:
    # Saying goodbye to a server that is already gone is no failure of ours.
    with suppress(OSError, smtplib.SMTPException):
        host.quit()
    host.close()


def deliver_due(limit: int = BATCH_SIZE) -> tuple[int, int]:
    """Send up to ``limit`` due messages; returns (sent, postponed).

    Each message is claimed (FOR UPDATE SKIP LOCKED on PostgreSQL, so several
    workers never take the same row; SQLite serialises writers), sent, and
    marked sent in one transaction, one message at a time. The SMTP connection
    is opened before a row is claimed, so a slow or unreachable server never
    holds a row lock (or SQLite's write lock) while it keeps us waiting.
    """
    sent = postponed = 0
    with ExitStack() as stack:
        connection = None
        while sent + postponed < limit:
            connect_error: Exception | None = None
            if connection is None:
                if not _due_exists():
                    break
                try:
                    connection = _connect(stack)
                except Exception as error:  # noqa: BLE001 - unreachable now, retried later
                    connect_error = error
                    stack.close()
            outbox = _claim_next()
            if outbox is None:
                break
            if connection is None:
                _postpone(outbox, connect_error or RuntimeError("no SMTP connection"))
                postponed += 1
                db.session.commit()
                continue
            try:
                message = build_message(outbox)
            except Exception as error:  # noqa: BLE001 - an unsendable row: never sendable
                _give_up(outbox, error)
                postponed += 1
                db.session.commit()
                continue
            try:
                connection.sendmail(
                    parseaddr(message["From"])[1], [outbox.to_email], signed_bytes(message)
                )
            except Exception as error:  # noqa: BLE001 - any SMTP failure is retried later
                if is_permanent(error):
                    # The server said no for good; the connection itself is still fine.
                    _give_up(outbox, error)
                else:
                    _postpone(outbox, error)
                    connection = None
                    stack.close()
                postponed += 1
            else:
                outbox.sent_at = utcnow()
                outbox.attempts += 1
                sent += 1
            db.session.commit()
    db.session.rollback()
    return sent, postponed


def is_permanent(error: Exception) -> bool:
    """An SMTP answer that retrying cannot change: a 5xx for the recipient or the message."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _text in error.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    if isinstance(error, smtplib.SMTPResponseException):
        return 500 <= error.smtp_code < 600
    return False


def _give_up(outbox: OutboxMessage, error: Exception) -> None:
    """Fail the message for good: never retried, listed on the admin dashboard."""
    outbox.attempts += 1
    outbox.failed_at = utcnow()
    outbox.last_error = f"{type(error).__name__}: {error}"[:1000]
    log.warning("mail %s to outbox row %s failed for good: %s", outbox.kind, outbox.id, error)


def failed_messages(limit: int = 50) -> list[OutboxMessage]:
    """Messages given up on, newest first (the admin dashboard lists them)."""
    return list(
        db.session.execute(
            db.select(OutboxMessage)
            .where(OutboxMessage.failed_at.is_not(None))
            .order_by(OutboxMessage.failed_at.desc(), OutboxMessage.id.desc())
            .limit(limit)
        ).scalars()
    )


def _postpone(outbox: OutboxMessage, error: Exception) -> None:
    if outbox.attempts + 1 >= current_app.config.get("OUTBOX_MAX_ATTEMPTS", MAX_ATTEMPTS):
        _give_up(outbox, error)
        return
    outbox.attempts += 1
    delay = min(timedelta(seconds=15 * 2 ** (outbox.attempts - 1)), MAX_BACKOFF)
    outbox.next_attempt_at = utcnow() + delay
    outbox.last_error = f"{type(error).__name__}: {error}"[:1000]
    log.warning("mail %s to outbox row %s postponed: %s", outbox.kind, outbox.id, error)
