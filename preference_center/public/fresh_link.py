"""Blueprint: "email me my preferences link" at /p.

The answer is the same, and takes about the same time, whether or not the
address is known (no account enumeration); requests are rate-limited per IP
and per address.
"""

from __future__ import annotations

import hashlib

from flask import Blueprint, render_template, request
from flask_babel import gettext as _

from .. import links, rate_limits
from ..extensions import db, limiter
from ..models import normalise_email
from ..validation import InvalidAddress, email_address

bp = Blueprint("fresh_link", __name__)


def address_key() -> str:
    """Rate-limit key for the typed address (hashed: no address in the limiter store)."""
    typed = normalise_email(request.form.get("email", ""))
    return "fresh-link:" + hashlib.sha256(typed.encode()).hexdigest()


@bp.get("/p")
def form():
    """The form: type an address, get a fresh link by email if it is known."""
    return render_template("public/fresh_link.html")


@bp.post("/p")
@limiter.limit("10 per hour; 3 per minute")
@limiter.limit("3 per hour", key_func=address_key)
@rate_limits.shared_counters_required
def request_link():
    """Queue a fresh link to a known address; answer the same either way."""
    try:
        email = email_address(request.form.get("email", ""))
    except InvalidAddress:
        return render_template(
            "public/fresh_link.html", error=_("Please enter your email address.")
        ), 400
    links.send_fresh_link(email)
    db.session.commit()  # both branches end the same way, so timing does not tell them apart
    return render_template("public/fresh_link_sent.html")
