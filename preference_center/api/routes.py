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

from flask import Blueprint, Response, current_app, g, request, stream_with_context
from sqlalchemy.exc import IntegrityError

from .. import audience, consent, feed, jurisdictions, may_send, rate_limits, suppression, tokens
from ..addresses import identifies_contact, release_unverified_claim
from ..consent import BusinessDeclined, ConsentError, Provenance, Via
from ..database import SAFE_METHODS
from ..errors import error_page
from ..extensions import csrf, db
from ..inputs import bounded_id
from ..models import (
    PERSONAL,
    Address,
    Channel,
    Contact,
    IdempotencyKey,
    MailingList,
    normalise_email,
)
from ..sender import contact_with, feedback_metadata, one_click_headers
from ..validation import UnsafeText, header_safe_text
from . import keys as api_keys
from . import openapi
from .keys import CONSENT_READ, CONTACTS_WRITE, EVENTS_READ, LINKS
from .requests import (
    MAX_BATCH,
    ConsentBatch,
    ContactRequest,
    LinkRequest,
    RequestInvalid,
    SubscriptionRequest,
    parse,
)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# Bearer keys, not cookies, authenticate the API: there is no session to forge.
csrf.exempt(bp)

DEFAULT_PAGE = 100
MAX_PAGE = 1000
MAX_BODY = 1024 * 1024
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


rate_limits.limit_blueprint(bp, lambda: current_app.config["API_RATE_LIMIT"], rate_limit_key)


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


def parsed(model, data: object):
    """``data`` as the request model, or the API's 422 for the first thing wrong."""
    try:
        return parse(model, data)
    except RequestInvalid as error:
        raise ApiError(422, error.code, error.message) from None


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
            link = parsed(LinkRequest, item)
            wanted.append((link.email, link.list_))
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
                .where(Address.email.in_(emails), identifies_contact(), Contact.erased_at.is_(None))
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
                # Attach as the ESP's custom args / variables / metadata: its
                # complaints and unsubscribes then name the list (README, "Senders").
                result["metadata"] = feedback_metadata(slug)
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


@bp.post("/consent")
@requires(CONSENT_READ)
def consent_batch():
    """Up to 1,000 "may I send?" questions; the answers in the same order, each the GET's."""
    body = json_body()
    items = body.get("items")
    if isinstance(items, list) and len(items) > MAX_BATCH:
        raise ApiError(413, "batch_too_large", f"At most {MAX_BATCH} items per request.")
    batch = parsed(ConsentBatch, body)
    return {"items": [may_send.check(q.email, q.list_).as_dict() for q in batch.items]}


# --- GET /lists/<slug>/audience ---------------------------------------------


@bp.get("/lists/<slug>/audience")
@requires(CONSENT_READ)
def list_audience(slug: str):
    """Everyone who may be sent this list now: NDJSON (or ?format=csv), streamed."""
    format_ = request.args.get("format", "ndjson")
    if format_ not in audience.FORMATS:
        raise ApiError(400, "bad_format", "'format' must be 'ndjson' or 'csv'.")
    after = request.args.get("after") or None
    if after is not None and (len(after) > 64 or "\x00" in after):
        raise ApiError(400, "bad_cursor", "'after' is the contact of a row the API gave out.")
    mailing_list = audience.find_list(slug) if "\x00" not in slug else None
    if mailing_list is None:
        raise ApiError(404, "unknown_list", f"There is no list {slug!r}.")
    rows = audience.recipients(mailing_list, after=after)
    try:
        # The first row (or the end) is read here, so a bad cursor is still a 400.
        first = next(rows, None)
    except audience.BadCursor:
        raise ApiError(
            400, "bad_cursor", "'after' is the contact of a row the API gave out."
        ) from None

    def all_rows():
        if first is not None:
            yield first
            yield from rows

    body = audience.render(format_, all_rows())
    mimetype = "text/csv" if format_ == "csv" else "application/x-ndjson"
    db.session.commit()  # end the request's own transaction: the stream has its snapshot
    return Response(stream_with_context(body), mimetype=mimetype)


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


def wanted_subscriptions(
    specs: list[SubscriptionRequest], jurisdiction: str | None = None
) -> list[tuple[MailingList, str, Provenance]]:
    """Find every requested list before anything is written (the rules are consent's).

    ``jurisdiction`` is the contact's effective one, for the rules that depend on it.
    """
    wanted, seen = [], set()
    for spec in specs:
        if spec.list_ in seen:
            raise ApiError(422, "invalid_request", f"The list {spec.list_!r} is named twice.")
        seen.add(spec.list_)
        mailing_list = db.session.execute(
            db.select(MailingList).filter_by(slug=spec.list_)
        ).scalar_one_or_none()
        if mailing_list is None:
            raise ApiError(422, "unknown_list", f"There is no list {spec.list_!r}.")
        if mailing_list.archived_at is not None:
            raise ApiError(422, "archived_list", f"The list {spec.list_!r} is no longer offered.")
        provenance = Provenance(
            source=spec.source,
            added_by=spec.added_by,
            basis=spec.basis,
            evidence=(spec.evidence or "").strip(),
            basis_date=spec.basis_date,
            relationship_ended_on=spec.relationship_ended_on,
        )
        try:
            provenance.checked(mailing_list, spec.state, jurisdiction)
        except ConsentError as error:
            raise refusal(error) from None
        wanted.append((mailing_list, spec.state, provenance))
    return wanted


def refusal(error: ConsentError) -> ApiError:
    """A consent rule's refusal as the API answers it: 409 for a contact's own no."""
    status = 409 if isinstance(error, BusinessDeclined) else 422
    return ApiError(status, error.code, str(error))


def write_contact(body: dict) -> tuple[int, dict]:
    request_body = parsed(ContactRequest, body)
    email, name = request_body.email, request_body.name
    if name is not None:
        try:
            name = header_safe_text(name, "'name'")
        except UnsafeText as error:
            raise ApiError(422, "invalid_request", str(error)) from None
    jurisdiction, subscriber_type = request_body.jurisdiction, request_body.subscriber_type
    language = request_body.language
    existing = contact_with(email)
    stored = existing.jurisdiction if existing is not None else None
    wanted = wanted_subscriptions(
        request_body.subscriptions or [], jurisdictions.effective(jurisdiction or stored)
    )
    if suppression.suppressed_address(email):
        raise ApiError(
            409,
            "suppressed",
            "This address was erased at its owner's request and cannot be added again.",
        )
    via = Via(
        channel=Channel.API,
        actor=g.caller.actor,
        ip=request.remote_addr,
        user_agent=request.user_agent.string or None,
    )
    contact = existing
    created = contact is None
    if created:
        release_unverified_claim(email, via)
        contact = Contact(name=name, jurisdiction=jurisdiction)
        contact.addresses.append(
            Address(email=normalise_email(email), kind=PERSONAL, subscriber_type=subscriber_type)
        )
        db.session.add(contact)
        db.session.flush()
    elif name is not None and name != contact.name:
        contact.name = name
    if jurisdiction is not None:
        consent.set_jurisdiction(contact, jurisdiction, via)
    if subscriber_type is not None:
        address = next(a for a in contact.addresses if a.email == normalise_email(email))
        consent.set_subscriber_type(address, subscriber_type, via)
    if language is not None:
        consent.set_language(contact, language, via)
    results = []
    for mailing_list, state, provenance in wanted:
        try:
            subscription, outcome = consent.place(contact, mailing_list, state, provenance, via)
        except ConsentError as error:
            raise refusal(error) from None
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
        after = bounded_id(text[1:]) if text[:1] == "e" else None
        if after is None and text != "e0":
            raise ValueError(cursor)
        return after or 0
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(400, "bad_cursor", "This cursor is not one the API gave out.") from None


def page_size(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_PAGE
    # isdigit() alone accepts "²" and "①", which int() refuses: ASCII digits only.
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_PAGE:
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
