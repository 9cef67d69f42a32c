"""Blueprint: the admin area behind a login (/admin).

Every view needs a signed-in admin; every request that changes something needs
the ``admin`` role (auditors read and export only). Both rules are enforced
here, once, for the whole blueprint, so a new view cannot forget them.
"""

from __future__ import annotations

import json

from flask import Blueprint, abort, render_template, request
from flask_login import current_user
from htmx_flask import make_response

from ..consent import Via
from ..database import SAFE_METHODS
from ..extensions import db, login_manager
from ..models import AdminAction, Channel

bp = Blueprint("admin", __name__, url_prefix="/admin")

ADMIN = "admin"

# Reachable without a session.
PUBLIC_ENDPOINTS = frozenset({"admin.login", "admin.login_submit"})
# POSTs that change no data (they only append to the admin record), open to auditors.
READ_ONLY_POSTS = frozenset({"admin.logout", "admin.verify_log"})


@bp.record_once
def configure_login(_state) -> None:
    login_manager.login_view = "admin.login"
    login_manager.login_message = "Please sign in to use the admin area."


@bp.before_request
def require_admin_session():
    """No session: to the login page. An auditor asking to change something: 403."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        if wants_fragment():
            # A session that ended while the page was open: a redirect would be followed
            # inside the request and the login page swapped into a fragment's place.
            login_url = login_manager.unauthorized().headers["Location"]
            return "", 401, {"HX-Redirect": login_url}
        return login_manager.unauthorized()
    if (
        request.method not in SAFE_METHODS
        and request.endpoint not in READ_ONLY_POSTS
        and current_user.role != ADMIN
    ):
        abort(403, description="Your role (auditor) can read and export, not change anything.")
    return None


def admin_via() -> Via:
    """The signed-in admin acting through the admin area, for consent events."""
    return Via(
        channel=Channel.ADMIN,
        actor=f"admin:{current_user.id}",
        ip=request.remote_addr,
        user_agent=request.user_agent.string or None,
    )


def record_action(action: str, admin=None, **detail) -> AdminAction:
    """Add who did what to the admin record, in the caller's transaction."""
    admin = admin or current_user
    entry = AdminAction(
        admin_id=admin.id,
        actor=f"admin:{admin.id} {admin.email}",
        action=action,
        detail=json.dumps(detail, sort_keys=True, default=str),
    )
    db.session.add(entry)
    return entry


def wants_fragment() -> bool:
    """Answer with a partial only for a plain htmx request (not boosted or restoring)."""
    return (
        bool(request.htmx) and not request.htmx.boosted and not request.htmx.history_restore_request
    )


def page_or_fragment(page: str, partial: str, **context):
    """The whole page, or only its swap unit for htmx; the URL answers both ways."""
    template = partial if wants_fragment() else page
    response = make_response(render_template(template, **context))
    response.headers["Vary"] = "HX-Request"
    return response


def invalid(template: str, message: str, status: int = 422, **context):
    """Refuse bad input: nothing is written, the page says what to fix."""
    db.session.rollback()
    return render_template(template, error=message, **context), status


def register_blueprint(app) -> None:
    """Register the admin area: its views are added to ``bp`` by importing them.

    The package's one upward import: each view module uses the helpers above.
    """
    from . import auth, contacts, dashboard, disputes, imports, lists, log, session  # noqa: F401

    app.register_blueprint(bp)
