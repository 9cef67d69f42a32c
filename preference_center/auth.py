"""Admin sessions with Flask-Login: loading the signed-in admin."""

from __future__ import annotations

from .extensions import db, login_manager
from .models import AdminUser


@login_manager.user_loader
def load_admin(user_id: str) -> AdminUser | None:
    if not user_id.isdigit():
        return None
    admin = db.session.get(AdminUser, int(user_id))
    return admin if admin is not None and admin.is_active else None
