"""Signing in and out of the admin area."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from ..extensions import db, limiter
from . import auth, bp, record_action


def login_limit() -> str:
    return current_app.config.get("ADMIN_LOGIN_RATE_LIMIT", "5 per minute; 30 per hour")


def attempted_email() -> str:
    # A second limit per attempted account slows guessing spread over many addresses.
    return "admin-login:" + (request.form.get("email") or "").strip().lower()


def failed(response) -> bool:
    # Only failed attempts count: an admin who signs in often is not locked out.
    return response.status_code == 401


def safe_next(target: str | None) -> str:
    """Only a path inside the admin area: ``next`` must not become an open redirect."""
    parts = urlsplit(target or "")
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
@limiter.limit(login_limit, deduct_when=failed)
@limiter.limit(login_limit, key_func=attempted_email, deduct_when=failed)
def login_submit():
    """Check the password; on success start a fresh session."""
    email = request.form.get("email", "")
    admin = auth.authenticate(email, request.form.get("password", ""))
    if admin is None:
        message = "That email and password do not match an active admin account."
        return render_template(
            "admin/login.html", error=message, email=email, next=request.form.get("next", "")
        ), 401
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
    db.session.commit()
    logout_user()
    fresh_session()
    flash("You are signed out.")
    return redirect(url_for("admin.login"), code=303)
