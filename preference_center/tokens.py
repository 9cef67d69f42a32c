"""Signed links: one salt per purpose, key rotation, per-contact revocation.

Payloads carry the contact's opaque ``public_id`` (never an email or a
database id). ``LINK_SIGNING_KEYS`` lists keys oldest first: the newest signs,
all of them verify, so a key can be retired by dropping it from the list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from flask import current_app
from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from .extensions import db
from .models import Contact

MANAGE = "manage-preferences"
UNSUBSCRIBE = "one-click-unsubscribe"
CONFIRM = "confirm-subscription"
VERIFY_ADDRESS = "verify-business-address"
# Short-lived links for the contact's rights, emailed to the address on file.
DATA_EXPORT = "data-export"
ERASE = "erase-my-data"
# The "Yes" of an invitation: reaching the mailbox is the confirmation.
INVITATION_YES = "invitation-yes"
# "Keep receiving?" before implied consent ends.
RECONFIRM = "keep-receiving"
# The optional question after leaving, bound to the withdrawal's request.
LEAVING_REASON = "leaving-reason"

_MAX_AGE_SETTING = {
    MANAGE: "MANAGE_LINK_MAX_AGE_DAYS",
    UNSUBSCRIBE: "UNSUBSCRIBE_LINK_MAX_AGE_DAYS",
    CONFIRM: "CONFIRM_LINK_MAX_AGE_DAYS",
    VERIFY_ADDRESS: "CONFIRM_LINK_MAX_AGE_DAYS",
    DATA_EXPORT: "DATA_EXPORT_LINK_MAX_AGE_DAYS",
    ERASE: "ERASE_LINK_MAX_AGE_DAYS",
    INVITATION_YES: "CONFIRM_LINK_MAX_AGE_DAYS",
    RECONFIRM: "RECONFIRM_LINK_MAX_AGE_DAYS",
    LEAVING_REASON: "CONFIRM_LINK_MAX_AGE_DAYS",
}


class LinkExpired(Exception):
    """A genuine manage link past its age, used for something other than saying no."""


class InvalidLink(Exception):
    """Raised for any token that does not verify; callers show one page for all."""


@dataclass(frozen=True)
class LinkClaims:
    contact: Contact
    scope: dict
    # True for a genuine link past its age: it may still withdraw, nothing else.
    expired: bool = False
    # The token version the link was signed with (see Contact.token_version).
    version: int | None = None


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["LINK_SIGNING_KEYS"], salt=purpose)


def sign(purpose: str, contact: Contact, **scope: str) -> str:
    """A token for ``purpose`` bound to ``contact`` and its current token version."""
    payload = {"c": contact.public_id, "v": contact.token_version, **scope}
    return _serializer(purpose).dumps(payload)


def verify(
    purpose: str, token: str, *, check_version: bool = True, allow_expired: bool = False
) -> LinkClaims:
    """Return the contact and scope a token names, or raise ``InvalidLink``.

    With ``allow_expired`` a correctly signed link past its age is accepted
    and marked ``expired``, so the caller can let it withdraw and nothing more.
    """
    max_age = current_app.config[_MAX_AGE_SETTING[purpose]] * 86400
    serializer = _serializer(purpose)
    expired = False
    try:
        payload = serializer.loads(token, max_age=max_age)
    except SignatureExpired as error:
        if not allow_expired or error.payload is None:
            raise InvalidLink from error
        try:
            payload = serializer.load_payload(error.payload)
        except BadData as bad:
            raise InvalidLink from bad
        expired = True
    except BadData as error:
        raise InvalidLink from error
    # Only our own keys sign, and they sign strings; anything else (a leaked key
    # minting odd payloads) must not reach a query, where a list or a NUL is an error.
    if not isinstance(payload, dict):
        raise InvalidLink
    if not all(_plain_text(payload.get(k)) for k in (payload.keys() - {"v"}) | {"c"}):
        raise InvalidLink
    contact = db.session.execute(
        db.select(Contact).filter_by(public_id=payload["c"])
    ).scalar_one_or_none()
    if contact is None or contact.erased_at is not None:
        raise InvalidLink
    if check_version and payload.get("v") != contact.token_version:
        raise InvalidLink
    scope = {k: v for k, v in payload.items() if k not in {"c", "v"}}
    return LinkClaims(contact=contact, scope=scope, expired=expired, version=payload.get("v"))


def _plain_text(value: object) -> bool:
    return isinstance(value, str) and "\x00" not in value


def public_url(endpoint: str, **values: str) -> str:
    """The absolute URL of ``endpoint`` as the app's URL map spells it.

    Built on ``PUBLIC_BASE_URL`` only, never on the request's Host header, so
    it is the same in a request, a CLI command and the outbox worker.
    """
    base = urlsplit(current_app.config["PUBLIC_BASE_URL"])
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path or "/", url_scheme=base.scheme or "https"
    )
    return adapter.build(endpoint, values, force_external=True)


def manage_url(contact: Contact) -> str:
    """The absolute manage-preferences URL."""
    return public_url("preferences.page", token=sign(MANAGE, contact))


class _Signable(Protocol):
    public_id: str
    token_version: int


# Stands for the token while a link's URL is built once; never in a real token
# (itsdangerous tokens are URL-safe base64 and dots).
_TOKEN_MARK = "TOKEN~MARK"


def link_maker(purpose: str, endpoint: str, **scope: str) -> Callable[[_Signable], str]:
    """``contact -> URL`` of ``endpoint`` with a ``purpose`` token bound to the contact.

    The same URLs as ``public_url(endpoint, token=sign(purpose, contact, **scope))``
    (``manage_url``, ``unsubscribe_url``), for a stream of many contacts: the
    serializer and the URL around the token are made once from the URL map,
    not once per link. Tokens are URL-safe, so they go into the URL as they are.
    """
    serializer = _serializer(purpose)
    prefix, suffix = public_url(endpoint, token=_TOKEN_MARK).split(_TOKEN_MARK)

    def make(contact: _Signable) -> str:
        payload = {"c": contact.public_id, "v": contact.token_version, **scope}
        return prefix + serializer.dumps(payload) + suffix

    return make


def unsubscribe_url(contact: Contact, list_slug: str) -> str:
    """The RFC 8058 one-click URL for one (contact, list)."""
    return public_url("unsubscribe.one_click", token=sign(UNSUBSCRIBE, contact, l=list_slug))
