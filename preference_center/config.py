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


# Who the demo organisation is; used only while ORGANISATION_NAME is the demo's.
DEMO_ORGANISATION = "Harbor Financial"
DEMO_ADDRESS = "100 Harbor Street, Suite 400, Portland, ME 04101, USA"
DEMO_CONTACT = "+1 207 555 0100 · hello@harbor.example · https://harbor.example"


def missing_identification(config: dict) -> list[str]:
    """The identification settings every email needs (CASL Reg. s.2, CAN-SPAM §7704(a)(5))
    that are not set."""
    return [name for name in ("ORGANISATION_ADDRESS", "ORGANISATION_CONTACT") if not config[name]]


def _origins(value: str) -> list[str]:
    """``https://a.example, https://b.example`` → origins without a trailing slash."""
    return [o.strip().rstrip("/") for o in value.split(",") if o.strip()]


def from_environment(instance_path: str) -> dict:
    """Build the configuration mapping from environment variables."""
    env = os.environ.get
    secret = env("SECRET_KEY") or _dev_secret(instance_path)
    signing_keys = [k.strip() for k in (env("LINK_SIGNING_KEYS") or "").split(",") if k.strip()]
    default_db = "sqlite:///" + str(Path(instance_path) / "preference_center.sqlite3")
    organisation = env("ORGANISATION_NAME") or DEMO_ORGANISATION

    def demo_default(value: str) -> str:
        return value if organisation == DEMO_ORGANISATION else ""

    return {
        "SECRET_KEY": secret,
        # Newest last: the last key signs, every key verifies.
        "LINK_SIGNING_KEYS": signing_keys or [secret],
        "SQLALCHEMY_DATABASE_URI": env("DATABASE_URL") or default_db,
        "PUBLIC_BASE_URL": (env("PUBLIC_BASE_URL") or "http://127.0.0.1:5000").rstrip("/"),
        "SENDER_NAME": env("SENDER_NAME") or "Dana Reyes",
        "ORGANISATION_NAME": organisation,
        # Who sends, in every email and page footer: a mailing address, and a
        # phone number, email or web address. The demo organisation has its own.
        "ORGANISATION_ADDRESS": env("ORGANISATION_ADDRESS") or demo_default(DEMO_ADDRESS),
        "ORGANISATION_CONTACT": env("ORGANISATION_CONTACT") or demo_default(DEMO_CONTACT),
        # ISO 3166-1 alpha-2 for contacts without their own; unset is unknown.
        "DEFAULT_JURISDICTION": (env("DEFAULT_JURISDICTION") or "").strip().upper() or None,
        # DKIM signing of every outgoing message, when all three are set.
        "DKIM_PRIVATE_KEY_FILE": env("DKIM_PRIVATE_KEY_FILE") or None,
        "DKIM_SELECTOR": env("DKIM_SELECTOR") or None,
        "DKIM_DOMAIN": env("DKIM_DOMAIN") or None,
        # Pages and mail use it when nothing else names a language (BCP 47, see languages.py).
        "DEFAULT_LANGUAGE": env("DEFAULT_LANGUAGE") or "en",
        "MANAGE_LINK_MAX_AGE_DAYS": _int("MANAGE_LINK_MAX_AGE_DAYS", 90),
        "UNSUBSCRIBE_LINK_MAX_AGE_DAYS": _int("UNSUBSCRIBE_LINK_MAX_AGE_DAYS", 400),
        "CONFIRM_LINK_MAX_AGE_DAYS": _int("CONFIRM_LINK_MAX_AGE_DAYS", 14),
        # "Keep receiving?" links are sent up to a month before the end: they outlive it.
        "RECONFIRM_LINK_MAX_AGE_DAYS": _int("RECONFIRM_LINK_MAX_AGE_DAYS", 60),
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
        # One Redis for every instance (README, "Scale-out"): the limits use it
        # unless RATELIMIT_STORAGE_URI names another storage.
        "REDIS_URL": env("REDIS_URL") or None,
        # None: REDIS_URL if set, else per-process memory (rate_limits.storage_uri).
        "RATELIMIT_STORAGE_URI": env("RATELIMIT_STORAGE_URI") or None,
        # Redis unreachable: count in this process's memory meanwhile (a log line
        # says so) and go back to Redis when it answers; never a failed request.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        # Several apps (or test runs) sharing one Redis keep apart by this prefix.
        "RATELIMIT_KEY_PREFIX": env("RATELIMIT_KEY_PREFIX") or "",
        # Per API key; the consent check runs before every send, so allow bursts.
        "API_RATE_LIMIT": env("API_RATE_LIMIT") or "100 per second",
        # Origins allowed to frame the signup form (frame-ancestors); no other page.
        "EMBED_ORIGINS": _origins(env("EMBED_ORIGINS") or ""),
        # The signup form: per client IP, and per address (hashed in the store).
        "SIGNUP_RATE_LIMIT": env("SIGNUP_RATE_LIMIT") or "20 per hour",
        "SIGNUP_ADDRESS_RATE_LIMIT": env("SIGNUP_ADDRESS_RATE_LIMIT") or "3 per hour",
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 64 * 1024),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": (env("PUBLIC_BASE_URL") or "").startswith("https://"),
        "WTF_CSRF_TIME_LIMIT": None,  # the session bounds the token's life
        # no-referrer pages send no Referer; security.py checks Origin instead.
        "WTF_CSRF_SSL_STRICT": False,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        # ESP feedback (/feedback/…): each provider is off until its credential is set.
        "SENDGRID_WEBHOOK_PUBLIC_KEY": env("SENDGRID_WEBHOOK_PUBLIC_KEY") or "",
        "MAILGUN_WEBHOOK_SIGNING_KEY": env("MAILGUN_WEBHOOK_SIGNING_KEY") or "",
        "POSTMARK_WEBHOOK_USER": env("POSTMARK_WEBHOOK_USER") or "",
        "POSTMARK_WEBHOOK_PASSWORD": env("POSTMARK_WEBHOOK_PASSWORD") or "",
        # Soft bounces in a row that make an address undeliverable.
        "SOFT_BOUNCE_LIMIT": _int("SOFT_BOUNCE_LIMIT", 5),
        # Signed webhook timestamps older (or newer) than this are refused as replays.
        "FEEDBACK_MAX_AGE_SECONDS": _int("FEEDBACK_MAX_AGE_SECONDS", 300),
        # SendGrid batches many events in one request.
        "FEEDBACK_MAX_CONTENT_LENGTH": _int("FEEDBACK_MAX_CONTENT_LENGTH", 1024 * 1024),
        # How many proxies in front set X-Forwarded-For/-Proto/-Host (0: none, trust nothing).
        "TRUSTED_PROXIES": _int("TRUSTED_PROXIES", 0),
        # Strict-Transport-Security on every https response.
        "HSTS": env("HSTS") or "max-age=31536000; includeSubDomains",
        # Failed admin sign-ins: free tries, then a wait that doubles up to the maximum.
        "ADMIN_LOGIN_FREE_FAILURES": _int("ADMIN_LOGIN_FREE_FAILURES", 4),
        "ADMIN_LOGIN_BACKOFF_SECONDS": _int("ADMIN_LOGIN_BACKOFF_SECONDS", 15),
        "ADMIN_LOGIN_MAX_BACKOFF_SECONDS": _int("ADMIN_LOGIN_MAX_BACKOFF_SECONDS", 900),
        # Tries before an outbox message is given up on (a 5xx answer gives up at once).
        "OUTBOX_MAX_ATTEMPTS": _int("OUTBOX_MAX_ATTEMPTS", 12),
        # Sender webhooks: seconds to wait for a receiver, and how long a worker's
        # claim on a webhook lasts (longer than a batch of 50 can take) before
        # another worker may resend from the last recorded event.
        "WEBHOOK_TIMEOUT": float(env("WEBHOOK_TIMEOUT") or 5),
        "WEBHOOK_LEASE_SECONDS": _int("WEBHOOK_LEASE_SECONDS", 300),
    }
