"""The one email-address check, for every door: importer, API, forms, admin, CLI.

``email-validator`` decides what an address is (syntax only: no DNS lookups,
so a test or an offline server answers the same). Addresses are kept in one
form, trimmed, lower-cased and with an ASCII (IDNA) domain, so one mailbox is
one row whichever door it came through.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from .models import normalise_email

# RFC 5321's limit on a forward path, which email-validator also enforces.
MAX_LENGTH = 254


class InvalidAddress(ValueError):
    """Not an email address we can write to; the message says why, for a person."""


def email_address(text: object) -> str:
    """``text`` as a normalised address, or ``InvalidAddress`` with a human message.

    Refuses anything that is not exactly one plain address: display names,
    lists of addresses, quoted local parts, IP literals, control characters
    (CR, LF, NUL), lone surrogates, non-ASCII local parts (SMTPUTF8, which
    not every mail server accepts), special-use domains, local parts over 64
    characters and addresses over 254.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidAddress("Enter an email address.")
    candidate = text.strip()
    if len(candidate) > MAX_LENGTH:
        raise InvalidAddress(f"An email address has at most {MAX_LENGTH} characters.")
    try:
        checked = validate_email(
            candidate, check_deliverability=False, allow_smtputf8=False, strict=True
        )
    except EmailNotValidError as error:
        raise InvalidAddress(f"This is not an email address: {error}") from None
    return normalise_email(checked.ascii_email or checked.normalized)
