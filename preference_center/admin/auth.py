"""Admin accounts and sessions: creating admins, checking passwords, loading the admin."""

from __future__ import annotations

from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db, login_manager
from ..models import AdminUser, normalise_email
from ..validation import InvalidAddress, email_address

ROLES = ("admin", "auditor")
PASSWORD_METHOD = "scrypt"
MIN_PASSWORD_LENGTH = 12


@login_manager.user_loader
def load_admin(session_id: str) -> AdminUser | None:
    """The active admin of a session id ``"<id>:<session version>"``, if still current.

    A session whose version is older than the admin's (they signed out, or the
    password changed since) loads nobody, whichever copy of the cookie it is.
    """
    admin_id, _, version = session_id.partition(":")
    if not (admin_id.isascii() and admin_id.isdigit() and version.isascii() and version.isdigit()):
        return None
    if len(admin_id) > 18 or len(version) > 18:
        return None
    admin = db.session.get(AdminUser, int(admin_id))
    if admin is None or not admin.is_active or admin.session_version != int(version):
        return None
    return admin


def end_sessions(admin: AdminUser) -> None:
    """Invalidate every session of ``admin`` issued so far (every copy of every cookie)."""
    admin.session_version = (admin.session_version or 1) + 1


def change_password(admin: AdminUser, password: str) -> None:
    """Set a new password; every session signed in with the old one ends."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AdminError(f"The password needs at least {MIN_PASSWORD_LENGTH} characters.")
    admin.password_hash = generate_password_hash(password, PASSWORD_METHOD)
    end_sessions(admin)


# Checked against when the email is unknown, so a wrong email takes as long as
# a wrong password and the timing does not say which addresses are admins. A
# fixed hash of "not a password" with werkzeug's scrypt parameters (those
# PASSWORD_METHOD hashes with): computing it at import took 0.5 s and 32 MB of
# scrypt memory in every process, the peak RSS of every CLI command.
_UNKNOWN_USER_HASH = (
    "scrypt:32768:8:1$cp1yFPdWDzn5IYrw$04914efa93caaa791aae891a6ac05c3ff9b2c2ae02a3afdf9ff1"
    "7afcb90e05e52ce969aff67782a9621d899783e0a4580d23ee3a548ed29163b3bfaed41f9114"
)


class AdminError(ValueError):
    """An admin account the rules refuse; the message says why."""


def create_admin(email: str, password: str, role: str = "admin") -> AdminUser:
    """Add an admin (or an auditor) with a scrypt-hashed password."""
    try:
        email = email_address(email)
    except InvalidAddress as error:
        raise AdminError(str(error)) from None
    if role not in ROLES:
        raise AdminError(f"Unknown role {role!r}; use one of {', '.join(ROLES)}.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AdminError(f"The password needs at least {MIN_PASSWORD_LENGTH} characters.")
    if db.session.execute(db.select(AdminUser).filter_by(email=email)).scalar_one_or_none():
        raise AdminError(f"An admin with the address {email} already exists.")
    admin = AdminUser(
        email=email, role=role, password_hash=generate_password_hash(password, PASSWORD_METHOD)
    )
    db.session.add(admin)
    db.session.flush()
    return admin


def find_admin(email: str) -> AdminUser | None:
    return db.session.execute(
        db.select(AdminUser).filter_by(email=normalise_email(email))
    ).scalar_one_or_none()


def authenticate(email: str, password: str) -> AdminUser | None:
    """The active admin with this email and password, or None."""
    admin = find_admin(email)
    if admin is None:
        check_password_hash(_UNKNOWN_USER_HASH, password)
        return None
    if not check_password_hash(admin.password_hash, password) or not admin.is_active:
        return None
    return admin
