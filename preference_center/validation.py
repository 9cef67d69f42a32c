"""Text that ends up in mail headers (names, list names): one line, printable, UTF-8.

Only names here: the one address validation lives beside this (issue 11's
``email-validator`` helper); this module never judges an email address.
"""

from __future__ import annotations

import unicodedata

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
