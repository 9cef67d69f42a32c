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
def load_admin(user_id: str) -> AdminUser | None:
    if not user_id.isdigit():
        return None
    admin = db.session.get(AdminUser, int(user_id))
    return admin if admin is not None and admin.is_active else None


# Checked against when the email is unknown, so a wrong email takes as long as
# a wrong password and the timing does not say which addresses are admins.
_UNKNOWN_USER_HASH = generate_password_hash("not a password", method=PASSWORD_METHOD)


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


def authenticate(email: str, password: str) -> AdminUser | None:
    """The active admin with this email and password, or None."""
    admin = db.session.execute(
        db.select(AdminUser).filter_by(email=normalise_email(email))
    ).scalar_one_or_none()
    if admin is None:
        check_password_hash(_UNKNOWN_USER_HASH, password)
        return None
    if not check_password_hash(admin.password_hash, password) or not admin.is_active:
        return None
    return admin
