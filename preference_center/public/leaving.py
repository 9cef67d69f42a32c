"""Blueprint: the optional "why are you leaving?" question at /leaving/<token>.

The withdrawal it follows is already done and logged; this only adds an
answer. CSRF-protected like every form (the RFC 8058 header POST never asks).
"""

from __future__ import annotations

from flask import Blueprint, render_template, request, session
from flask_babel import gettext as _

from .. import languages, leaving, tokens
from ..extensions import db
from . import fragment, wants_fragment

bp = Blueprint("leaving", __name__)


@bp.app_context_processor
def reasons() -> dict:
    return {"leaving_reasons": leaving.REASONS}


def offer_after_redirect(url: str, key: str) -> None:
    """Without JavaScript the answer is a 303 to the page: it shows the question once."""
    session["leaving"] = {"url": url, "key": key}


def offered_after_redirect() -> dict:
    """The question the last redirect left for this page view, if any (shown once)."""
    offer = session.pop("leaving", None)
    if not isinstance(offer, dict):
        return {}
    return {"leaving_url": offer.get("url"), "leaving_key": offer.get("key")}


@bp.post("/leaving/<token>")
def answer(token: str):
    """Store the optional reason with the withdrawals of that request."""
    claims = tokens.verify(tokens.LEAVING_REASON, token)
    languages.speak_to(claims.contact)
    leaving.record_reason(
        claims.contact,
        claims.scope.get("r", ""),
        request.form.get("reason"),
        request.form.get("reason_text"),
    )
    db.session.commit()
    if wants_fragment():
        return fragment("public/_leaving_thanks.html")
    return render_template(
        "public/message.html",
        title=_("Thank you"),
        text=_("Thank you for telling us. You are still unsubscribed; nothing else changed."),
        link=tokens.manage_url(claims.contact),
        link_text=_("See all your preferences"),
    )
