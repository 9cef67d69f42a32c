"""Signing in and out of the admin area."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from ..errors import error_page
from ..extensions import db
from . import auth, bp, record_action, throttle


def safe_next(target: str | None) -> str:
    """Only a path inside the admin area: ``next`` must not become an open redirect.

    Control characters (CR/LF above all) and backslashes never make a path of
    ours; a value with any of them is dropped rather than put in a header.
    """
    target = target or ""
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in target):
        return url_for("admin.dashboard")
    try:
        parts = urlsplit(target)
    except ValueError:
        return url_for("admin.dashboard")
    if parts.scheme or parts.netloc or not parts.path.startswith("/admin"):
        return url_for("admin.dashboard")
    return target


def fresh_session() -> None:
    """Drop the session and the CSRF token cached for this request with it."""
    session.clear()
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)


@bp.get("/login")
def login():
    """The sign-in form."""
    if current_user.is_authenticated:
        return redirect(url_for("admin.dashboard"))
    return render_template("admin/login.html", next=request.args.get("next", ""))


@bp.post("/login")
def login_submit():
    """Check the password (unless this address or IP must wait); on success a fresh session."""
    email = request.form.get("email", "")
    keys = throttle.keys_for(email, request.remote_addr)
    wait = throttle.wait_seconds(keys)
    if wait:
        # The same words whichever key waits: no hint about the address.
        response, status = error_page(429, "Too many failed sign-ins. Please wait and try again.")
        return response, status, {"Retry-After": str(wait)}
    admin = auth.authenticate(email, request.form.get("password", ""))
    if admin is None:
        throttle.record_failure(keys)
        db.session.commit()
        message = "That email and password do not match an active admin account."
        return render_template(
            "admin/login.html", error=message, email=email, next=request.form.get("next", "")
        ), 401
    throttle.reset(keys)
    # A new session on sign-in: nothing from before the login carries over.
    fresh_session()
    login_user(admin)
    record_action("login", admin=admin, ip=request.remote_addr)
    db.session.commit()
    return redirect(safe_next(request.form.get("next")), code=303)


@bp.post("/logout")
def logout():
    """End the session (a POST, so a link or a prefetch cannot sign anyone out)."""
    record_action("logout")
    # Every copy of this session cookie (and any other session of this admin) ends.
    auth.end_sessions(current_user._get_current_object())
    db.session.commit()
    logout_user()
    fresh_session()
    flash("You are signed out.")
    return redirect(url_for("admin.login"), code=303)
