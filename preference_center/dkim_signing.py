"""DKIM signatures (RFC 6376) over the exact bytes the mailer sends.

Gmail and Yahoo require DKIM of bulk senders, and a one-click
``List-Unsubscribe`` counts only when the signature covers it. With
``DKIM_PRIVATE_KEY_FILE``, ``DKIM_SELECTOR`` and ``DKIM_DOMAIN`` set, every
message is signed rsa-sha256, relaxed/relaxed, with ``h=`` naming the
identifying and list headers it carries.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

# dkimpy (with dnspython) and cryptography are imported where a key is used:
# ~10 MB and a tenth of a second that every process paid at start-up (every CLI
# command, every worker), though most never sign a message.

# The headers h= covers, those of them a message has (From always).
SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
)
SETTINGS = ("DKIM_PRIVATE_KEY_FILE", "DKIM_SELECTOR", "DKIM_DOMAIN")


class DkimError(RuntimeError):
    """DKIM is half configured, or its key cannot be read."""


def enabled() -> bool:
    """True when all three DKIM settings are set; half of them is an error."""
    present = [name for name in SETTINGS if current_app.config.get(name)]
    if present and len(present) < len(SETTINGS):
        missing = ", ".join(name for name in SETTINGS if name not in present)
        raise DkimError(f"DKIM is half configured: set {missing} too, or none of them.")
    return bool(present)


@lru_cache(maxsize=4)
def _load_key(path: str, modified: float) -> rsa.RSAPrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise DkimError(f"Cannot read the DKIM private key {path}: {error}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DkimError(f"The DKIM key {path} is not an RSA key (rsa-sha256 needs one).")
    return key


def private_key() -> rsa.RSAPrivateKey:
    """The configured key (PKCS#1 or PKCS#8 PEM), re-read when the file changes."""
    path = current_app.config["DKIM_PRIVATE_KEY_FILE"]
    try:
        modified = Path(path).stat().st_mtime
    except OSError as error:
        raise DkimError(f"Cannot read the DKIM private key {path}: {error.strerror}") from None
    return _load_key(path, modified)


def sign(raw: bytes, present_headers: list[str]) -> bytes:
    """``raw`` with a DKIM-Signature header prepended, or unchanged when DKIM is off.

    ``present_headers`` are the names of the headers the message carries; the
    signature covers those of ``SIGNED_HEADERS`` among them.
    """
    if not enabled():
        return raw
    import dkim
    from cryptography.hazmat.primitives import serialization

    present = {name.lower() for name in present_headers}
    include = [name.lower().encode() for name in SIGNED_HEADERS if name.lower() in present]
    # dkimpy reads PKCS#1 ("BEGIN RSA PRIVATE KEY") only.
    pem = private_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    signature = dkim.sign(
        raw,
        current_app.config["DKIM_SELECTOR"].encode(),
        current_app.config["DKIM_DOMAIN"].encode(),
        pem,
        canonicalize=(b"relaxed", b"relaxed"),
        signature_algorithm=b"rsa-sha256",
        include_headers=include,
    )
    return signature + raw


def dns_record() -> tuple[str, str]:
    """The TXT record to publish: its name and its value (the public key)."""
    from cryptography.hazmat.primitives import serialization

    public = (
        private_key()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    name = f"{current_app.config['DKIM_SELECTOR']}._domainkey.{current_app.config['DKIM_DOMAIN']}"
    return name, f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode('ascii')}"
