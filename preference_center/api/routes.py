"""Blueprint: the sender API at /api/v1 (Bearer keys, JSON in and out).

Every error is ``{"error": {"code", "message"}}``; the OpenAPI document in
``openapi.py`` describes each route and is checked against this code by the
schemathesis test.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
from datetime import date

from flask import Blueprint, Response, current_app, g, request
from sqlalchemy.exc import IntegrityError

from .. import consent, feed, languages, may_send, suppression, tokens
from ..consent import ConsentError, Provenance, Via
from ..database import SAFE_METHODS
from ..errors import error_page
from ..extensions import csrf, db, limiter
from ..models import (
    BUSINESS,
    BUSINESS_DECLINED,
    INVITED,
    PERSONAL,
    SUBSCRIBED,
    Address,
    Contact,
    IdempotencyKey,
    MailingList,
    normalise_email,
)
from ..sender import contact_with, one_click_headers
from . import keys as api_keys
from . import openapi
from .keys import CONSENT_READ, CONTACTS_WRITE, EVENTS_READ, LINKS

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# Bearer keys, not cookies, authenticate the API: there is no session to forge.
csrf.exempt(bp)

MAX_BATCH = 1000
DEFAULT_PAGE = 100
MAX_PAGE = 1000
MAX_BODY = 1024 * 1024
# Words that mark a networking source (a connection is not consent): invitations only.
NETWORKING_WORDS = ("networking", "linkedin", "connections", "xing")
PUBLIC_ENDPOINTS = frozenset({"api.openapi_document"})


class ApiError(Exception):
    """A request refused with a status, a stable code and a message for the caller."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@bp.errorhandler(ApiError)
def api_error(error: ApiError):
    db.session.rollback()  # nothing half-written: the whole request is one transaction
    response, status = error_page(error.status, error.message, error.code)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response, status


def rate_limit_key() -> str:
    """One bucket per presented key (hashed), so no one can drain another key's budget."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        return "api:" + hashlib.sha256(key.strip().encode()).hexdigest()[:32]
    return "ip:" + (request.remote_addr or "")


limiter.limit(lambda: current_app.config["API_RATE_LIMIT"], key_func=rate_limit_key)(bp)


@bp.before_request
def authenticate():
    # Batches of 1,000 items need more room than the forms' default limit.
    request.max_content_length = current_app.config.get("API_MAX_CONTENT_LENGTH", MAX_BODY)
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "unauthorized", "Send your API key as 'Authorization: Bearer <key>'.")
    caller = api_keys.verify(key.strip(), read_only=request.method in SAFE_METHODS)
    if caller is None:
        raise ApiError(401, "unauthorized", "This API key is not valid (wrong or revoked).")
    g.caller = caller


def requires(scope: str):
    """Refuse the view with 403 unless the caller's key has ``scope``."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if scope not in g.caller.scopes:
                raise ApiError(403, "forbidden", f"This API key does not have the {scope} scope.")
            return view(*args, **kwargs)

        return wrapped

    return decorator


def json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "Send a JSON object with 'Content-Type: application/json'.")
    return body


def text_field(
    data: dict, name: str, *, required: bool = True, max_length: int = 200
) -> str | None:
    """A string field of ``data``; None when optional and absent; 422 when malformed."""
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise ApiError(422, "invalid_request", f"'{name}' must be a non-empty string.")
    if len(value) > max_length:
        raise ApiError(422, "invalid_request", f"'{name}' is longer than {max_length} characters.")
    if "\x00" in value:  # PostgreSQL refuses NUL in text
        raise ApiError(422, "invalid_request", f"'{name}' must not contain NUL characters.")
    return value.strip()


def email_field(data: dict) -> str:
    email = text_field(data, "email", max_length=320)
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in email):
        raise ApiError(422, "invalid_email", f"{email!r} is not an email address.")
    return email


# --- POST /links ------------------------------------------------------------


@bp.post("/links")
@requires(LINKS)
def links():
    """Manage and one-click URLs, with the List-Unsubscribe headers, for one or many."""
    body = json_body()
    if "items" not in body:
        [result] = mint_links([body])
        if "error" in result:
            error = result["error"]
            raise ApiError(error["status"], error["code"], error["message"])
        db.session.commit()  # keeps the key's last-used time (api_keys._touch)
        return result
    items = body["items"]
    if not isinstance(items, list) or not items:
        raise ApiError(422, "invalid_request", "'items' must be a non-empty array.")
    if len(items) > MAX_BATCH:
        raise ApiError(413, "batch_too_large", f"At most {MAX_BATCH} items per request.")
    results = mint_links(items)
    for result in results:
        result.get("error", {}).pop("status", None)
    db.session.commit()
    return {"items": results}


def mint_links(items: list) -> list[dict]:
    """One result per item, in order: links, or an ``error`` for that item alone."""
    wanted: list[tuple[str, str | None] | ApiError] = []
    for item in items:
        try:
            if not isinstance(item, dict):
                raise ApiError(422, "invalid_request", "Each item must be a JSON object.")
            wanted.append((email_field(item), text_field(item, "list", required=False)))
        except ApiError as error:
            wanted.append(error)
    pairs = [w for w in wanted if isinstance(w, tuple)]
    emails = {normalise_email(email) for email, _ in pairs}
    slugs = {slug for _, slug in pairs if slug}
    contacts = (
        dict(
            db.session.execute(
                db.select(Address.email, Contact)
                .join(Contact, Contact.id == Address.contact_id)
                .where(Address.email.in_(emails), Contact.erased_at.is_(None))
            ).all()
        )
        if emails
        else {}
    )
    known_lists = (
        set(
            db.session.execute(
                db.select(MailingList.slug).where(MailingList.slug.in_(slugs))
            ).scalars()
        )
        if slugs
        else set()
    )

    results = []
    for want in wanted:
        if isinstance(want, ApiError):
            results.append({"error": _error(want.status, want.code, want.message)})
            continue
        email, slug = want
        result: dict = {"email": email, "list": slug}
        contact = contacts.get(normalise_email(email))
        if contact is None:
            result["error"] = _error(404, "unknown_contact", f"No contact has the address {email}.")
        elif slug is not None and slug not in known_lists:
            result["error"] = _error(404, "unknown_list", f"There is no list {slug!r}.")
        else:
            result["manage_url"] = tokens.manage_url(contact)
            if slug is not None:
                headers = one_click_headers(contact, slug)
                result["unsubscribe_url"] = headers["List-Unsubscribe"][1:-1]
                result["headers"] = headers
        results.append(result)
    return results


def _error(status: int, code: str, message: str) -> dict:
    return {"status": status, "code": code, "message": message}


# --- GET /consent -----------------------------------------------------------


@bp.get("/consent")
@requires(CONSENT_READ)
def consent_check():
    """May this list be sent to this address now? The may-send answer."""
    email = request.args.get("email", "").strip()
    slug = request.args.get("list", "").strip()
    if not email or not slug:
        raise ApiError(400, "missing_parameter", "Give both 'email' and 'list'.")
    if "\x00" in email or "\x00" in slug:  # PostgreSQL refuses NUL in text
        raise ApiError(400, "bad_parameter", "Parameters must not contain NUL characters.")
    answer = may_send.check(email, slug)
    if answer.status == "unknown_list":
        raise ApiError(404, "unknown_list", answer.reason)
    return answer.as_dict()


# --- POST /contacts ---------------------------------------------------------


@bp.post("/contacts")
@requires(CONTACTS_WRITE)
def contacts():
    """Create or update a contact and its subscriptions; provenance required."""
    key = request.headers.get("Idempotency-Key")
    request_hash = hashlib.sha256(request.get_data()).hexdigest()
    if key is not None:
        key = key.strip()
        if not key or len(key) > 200 or "\x00" in key:
            raise ApiError(400, "bad_idempotency_key", "Idempotency-Key must be 1–200 characters.")
        stored = stored_response(key)
        if stored is not None:
            return replay(stored, request_hash)
    body = json_body()
    try:
        status, result = write_contact(body)
        payload = json.dumps(result)
        if key is not None:
            db.session.add(
                IdempotencyKey(
                    api_key_id=g.caller.id,
                    key=key,
                    request_hash=request_hash,
                    response_status=status,
                    response_body=payload,
                )
            )
        db.session.commit()
    except IntegrityError:
        # A concurrent request created the same contact or used the same key first.
        db.session.rollback()
        stored = stored_response(key) if key is not None else None
        if stored is not None:
            return replay(stored, request_hash)
        message = "A concurrent request changed this contact; retry."
        raise ApiError(409, "conflict", message) from None
    return Response(payload, status, mimetype="application/json")


def stored_response(key: str) -> IdempotencyKey | None:
    return db.session.execute(
        db.select(IdempotencyKey).filter_by(api_key_id=g.caller.id, key=key)
    ).scalar_one_or_none()


def replay(stored: IdempotencyKey, request_hash: str) -> Response:
    if stored.request_hash != request_hash:
        raise ApiError(
            422,
            "idempotency_mismatch",
            "This Idempotency-Key was used with a different body; use a new key.",
        )
    response = Response(stored.response_body, stored.response_status, mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response


def is_networking_source(source: str) -> bool:
    lowered = source.lower()
    return any(word in lowered for word in NETWORKING_WORDS)


def wanted_subscriptions(specs: object) -> list[tuple[MailingList, str, Provenance]]:
    """Validate every requested subscription before anything is written."""
    if specs is None:
        return []
    if not isinstance(specs, list):
        raise ApiError(422, "invalid_request", "'subscriptions' must be an array.")
    wanted, seen = [], set()
    for spec in specs:
        if not isinstance(spec, dict):
            raise ApiError(422, "invalid_request", "Each subscription must be a JSON object.")
        slug = text_field(spec, "list", max_length=64)
        if slug in seen:
            raise ApiError(422, "invalid_request", f"The list {slug!r} is named twice.")
        seen.add(slug)
        mailing_list = db.session.execute(
            db.select(MailingList).filter_by(slug=slug)
        ).scalar_one_or_none()
        if mailing_list is None:
            raise ApiError(422, "unknown_list", f"There is no list {slug!r}.")
        if mailing_list.archived_at is not None:
            raise ApiError(422, "archived_list", f"The list {slug!r} is no longer offered.")
        state = text_field(spec, "state", max_length=16)
        if state not in (INVITED, SUBSCRIBED):
            raise ApiError(
                422, "invalid_state", "'state' must be 'invited' or 'subscribed' via the API."
            )
        provenance = Provenance(
            source=text_field(spec, "source"),
            added_by=text_field(spec, "added_by"),
            basis=text_field(spec, "basis", max_length=32),
            evidence=text_field(spec, "evidence", required=False, max_length=2000) or "",
            basis_date=date_field(spec, "basis_date"),
        )
        if is_networking_source(provenance.source) and state != INVITED:
            raise ApiError(
                422,
                "networking_source",
                f"People from a networking source ({provenance.source!r}) can only be "
                "invited: a connection is not consent.",
            )
        try:
            provenance.checked(mailing_list, state)
        except ConsentError as error:
            raise ApiError(422, "provenance", str(error)) from None
        wanted.append((mailing_list, state, provenance))
    return wanted


def date_field(data: dict, name: str) -> date | None:
    value = data.get(name)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ApiError(422, "invalid_request", f"'{name}' must be a date (YYYY-MM-DD).") from None


def language_field(body: dict) -> str | None:
    """The optional ``language`` (BCP 47, one we speak: ``fr``, ``pt-BR``)."""
    value = body.get("language")
    if value is None:
        return None
    language = languages.normalise(value)
    if language is None:
        raise ApiError(
            422,
            "invalid_request",
            f"'language' must be a BCP 47 tag of {', '.join(languages.SUPPORTED)}.",
        )
    return language


def write_contact(body: dict) -> tuple[int, dict]:
    email = email_field(body)
    name = text_field(body, "name", required=False)
    language = language_field(body)
    wanted = wanted_subscriptions(body.get("subscriptions"))
    if suppression.suppressed_address(email):
        raise ApiError(
            409,
            "suppressed",
            "This address was erased at its owner's request and cannot be added again.",
        )
    contact = contact_with(email)
    created = contact is None
    if created:
        contact = Contact(name=name)
        contact.addresses.append(Address(email=normalise_email(email), kind=PERSONAL))
        db.session.add(contact)
        db.session.flush()
    elif name is not None and name != contact.name:
        contact.name = name
    via = Via(
        channel="api",
        actor=g.caller.actor,
        ip=request.remote_addr,
        user_agent=request.user_agent.string or None,
    )
    if language is not None:
        consent.set_language(contact, language, via)
    results = []
    for mailing_list, state, provenance in wanted:
        if mailing_list.audience == BUSINESS and contact.business_contact == BUSINESS_DECLINED:
            raise ApiError(
                409,
                "business_declined",
                f"{email} declined all business messages; {mailing_list.slug!r} is a "
                "business list.",
            )
        try:
            subscription, outcome = consent.place(contact, mailing_list, state, provenance, via)
        except ConsentError as error:
            raise ApiError(422, "provenance", str(error)) from None
        if outcome == "suppressed":
            raise ApiError(409, "suppressed", suppressed_reason(email, subscription))
        results.append(
            {
                "list": mailing_list.slug,
                "state": consent.effective_state(subscription),
                "outcome": outcome,
            }
        )
    contact_json = {
        "id": contact.public_id,
        "email": normalise_email(email),
        "name": contact.name,
        "language": contact.language,
    }
    return (201 if created else 200), {"contact": contact_json, "subscriptions": results}


def suppressed_reason(email: str, subscription) -> str:
    if subscription is None:
        # consent.place found one of the contact's addresses erased (a tombstone).
        return f"An address of the contact of {email} was erased; nothing can be added for it."
    slug = subscription.mailing_list.slug
    if subscription.disputed_at is not None:
        return (
            f"{email} disputed being on {slug!r} on {subscription.disputed_at:%Y-%m-%d}; "
            "only the contact can opt in again."
        )
    return (
        f"{email} unsubscribed from {slug!r} on {subscription.updated_at:%Y-%m-%d}; "
        "only the contact can opt in again."
    )


# --- GET /events ------------------------------------------------------------


def encode_cursor(event_id: int) -> str:
    return base64.urlsafe_b64encode(f"e{event_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if text[:1] != "e" or not text[1:].isdigit():
            raise ValueError(cursor)
        return int(text[1:])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(400, "bad_cursor", "This cursor is not one the API gave out.") from None


def page_size(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_PAGE
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise ApiError(400, "bad_limit", f"'limit' must be a whole number from 1 to {MAX_PAGE}.")
    return int(value)


@bp.get("/events")
@requires(EVENTS_READ)
def events():
    """The consent log in order, one page after the cursor (JSON or NDJSON)."""
    after = decode_cursor(request.args.get("cursor"))
    limit = page_size(request.args.get("limit"))
    rows = feed.events_after(after, limit + 1)
    has_more = len(rows) > limit
    rows = rows[:limit]
    # The cursor always moves to the last event seen, so a poller never rereads.
    next_cursor = encode_cursor(rows[-1].id if rows else after)
    wanted = request.accept_mimetypes.best_match(["application/json", "application/x-ndjson"])
    if wanted == "application/x-ndjson":
        lines = (json.dumps(feed.as_dict(row)) + "\n" for row in rows)
        headers = {"X-Next-Cursor": next_cursor, "X-Has-More": "true" if has_more else "false"}
        return Response(lines, mimetype="application/x-ndjson", headers=headers)
    return {
        "events": [feed.as_dict(row) for row in rows],
        "next_cursor": next_cursor,
        "has_more": has_more,
    }


# --- GET /openapi.json ------------------------------------------------------


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI 3.1 description of this API (no key needed)."""
    return openapi.DOCUMENT
