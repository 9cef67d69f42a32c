"""Settings read from the environment, with safe development defaults."""

import os
import secrets
from pathlib import Path

_DEV_KEY_FILE = "dev-secret-key"


def _dev_secret(instance_path: str) -> str:
    """A random key kept in instance/ so development links survive restarts.

    Production sets SECRET_KEY and LINK_SIGNING_KEYS; nothing in the code
    carries a fixed key an attacker could read.
    """
    path = Path(instance_path) / _DEV_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def from_environment(instance_path: str) -> dict:
    """Build the configuration mapping from environment variables."""
    env = os.environ.get
    secret = env("SECRET_KEY") or _dev_secret(instance_path)
    signing_keys = [k.strip() for k in (env("LINK_SIGNING_KEYS") or "").split(",") if k.strip()]
    default_db = "sqlite:///" + str(Path(instance_path) / "preference_center.sqlite3")
    return {
        "SECRET_KEY": secret,
        # Newest last: the last key signs, every key verifies.
        "LINK_SIGNING_KEYS": signing_keys or [secret],
        "SQLALCHEMY_DATABASE_URI": env("DATABASE_URL") or default_db,
        "PUBLIC_BASE_URL": (env("PUBLIC_BASE_URL") or "http://127.0.0.1:5000").rstrip("/"),
        "SENDER_NAME": env("SENDER_NAME") or "Dana Reyes",
        "ORGANISATION_NAME": env("ORGANISATION_NAME") or "Harbor Financial",
        # Pages and mail use it when nothing else names a language (BCP 47, see languages.py).
        "DEFAULT_LANGUAGE": env("DEFAULT_LANGUAGE") or "en",
        "MANAGE_LINK_MAX_AGE_DAYS": _int("MANAGE_LINK_MAX_AGE_DAYS", 90),
        "UNSUBSCRIBE_LINK_MAX_AGE_DAYS": _int("UNSUBSCRIBE_LINK_MAX_AGE_DAYS", 400),
        "CONFIRM_LINK_MAX_AGE_DAYS": _int("CONFIRM_LINK_MAX_AGE_DAYS", 14),
        # Links that download or erase someone's data live one day.
        "DATA_EXPORT_LINK_MAX_AGE_DAYS": _int("DATA_EXPORT_LINK_MAX_AGE_DAYS", 1),
        "ERASE_LINK_MAX_AGE_DAYS": _int("ERASE_LINK_MAX_AGE_DAYS", 1),
        # Page changes within this many seconds share one emailed receipt.
        "RECEIPT_DELAY_SECONDS": _int("RECEIPT_DELAY_SECONDS", 600),
        "MAIL_SERVER": env("MAIL_SERVER") or "127.0.0.1",
        "MAIL_PORT": _int("MAIL_PORT", 8025),
        "MAIL_USE_TLS": (env("MAIL_USE_TLS") or "").lower() in {"1", "true", "yes"},
        "MAIL_USERNAME": env("MAIL_USERNAME"),
        "MAIL_PASSWORD": env("MAIL_PASSWORD"),
        # Seconds to wait for the SMTP server to answer before retrying later.
        "MAIL_TIMEOUT": _int("MAIL_TIMEOUT", 30),
        "MAIL_DEFAULT_SENDER": env("MAIL_DEFAULT_SENDER") or "Dana Reyes <dana@harbor.example>",
        # Per manage link, for page actions that send the contact an email.
        "MAIL_SENDING_RATE_LIMIT": env("MAIL_SENDING_RATE_LIMIT") or "10 per hour",
        "RATELIMIT_STORAGE_URI": env("RATELIMIT_STORAGE_URI") or "memory://",
        # Per API key; the consent check runs before every send, so allow bursts.
        "API_RATE_LIMIT": env("API_RATE_LIMIT") or "100 per second",
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 64 * 1024),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": (env("PUBLIC_BASE_URL") or "").startswith("https://"),
        "WTF_CSRF_TIME_LIMIT": None,  # the session bounds the token's life
        # no-referrer pages send no Referer; security.py checks Origin instead.
        "WTF_CSRF_SSL_STRICT": False,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    }
