"""What may come in from outside, checked once for every door.

``email_address`` is the one email-address check (importer, API, forms, admin,
CLI): ``email-validator`` decides what an address is (syntax only: no DNS
lookups, so a test or an offline server answers the same), and addresses are
kept in one form, trimmed, lower-cased and with an ASCII (IDNA) domain, so one
mailbox is one row whichever door it came through. ``header_safe_text`` keeps
names and list names that end up in mail headers to one printable line.
"""

from __future__ import annotations

import unicodedata

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


# Control characters (CR, LF, TAB, NUL, C1 such as NEL), line and paragraph
# separators, and lone surrogates (which no UTF-8 encoder accepts).
_UNSAFE_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cs"})


class UnsafeText(ValueError):
    """Text that cannot go into a mail header; the message says which field."""


def is_encodable(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (JSON can carry a lone ``\\ud800``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def header_safe_text(text: str, what: str = "This field") -> str:
    """``text`` stripped, if it is one printable line; raises ``UnsafeText`` otherwise.

    A name with CR/LF would split a header of every message that names it
    (Subject, List-Id, To), and each of those messages would fail.
    """
    if any(unicodedata.category(c) in _UNSAFE_CATEGORIES for c in text):
        raise UnsafeText(f"{what} must be one line of text, without control characters.")
    return text.strip()
